export * from './bfcl.js';
export * from './looptool.js';
export * from './openai-chat.js';
export * from './qwen.js';
export * from './rejection.js';
export * from './sharegpt.js';
export * from './verl.js';
