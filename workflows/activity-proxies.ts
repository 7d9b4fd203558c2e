import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

/**
 * Short database activities on the control queue. Retries are unbounded in count but capped in interval: a database
 * that is briefly down (restart, failover) must not fail a week-long loop.
 */
export const dbActivities = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['ConfigInvalid'] },
});
