# The looptool worker image (docker-compose.yml `worker`). The TypeScript sources are compiled to dist/ in the image
# (scripts/build.js); the worker runs from there, bundling workflows/ from the sources at start as in development.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY core ./core
COPY db ./db
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY client ./client
COPY services ./services
COPY datasets ./datasets
COPY sim ./sim
COPY data ./data
COPY scripts ./scripts
COPY bin ./bin
COPY tsconfig.json ./
RUN node scripts/build.js
USER node
CMD ["node", "bin/looptool.js", "worker"]
