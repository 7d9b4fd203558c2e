export * from './json-calls.js';
export * from './model-output.js';
export { parsePythonCalls, pyToJson } from './python-calls.js';
export { parsePythonExpression, PySyntaxError, unparsePython, type PyNode } from './python-ast.js';
export * from './types.js';
