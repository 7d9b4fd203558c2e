# The looptool worker image (docker-compose.yml `worker`). TypeScript runs through tsx, as in development.
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
COPY sim ./sim
COPY data ./data
COPY bin ./bin
COPY tsconfig.json ./
USER node
CMD ["node_modules/.bin/tsx", "worker/main.ts"]
