export * from './function-def.js';
export * from './json-value.js';
export * from './messages.js';
export * from './sample.js';
export * from './tool-call.js';
export * from './model-io.js';
