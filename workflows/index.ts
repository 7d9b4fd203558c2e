// The worker's workflowsPath: workflow functions only. Everything imported from here is bundled into Temporal's
// deterministic sandbox, so it may import only core/ and @temporalio/workflow (and types from elsewhere).
export { loopWorkflow } from './loop.js';
export { stageWorkflow } from './stage.js';
