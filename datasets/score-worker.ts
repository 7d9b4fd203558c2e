// A thread of `looptool score`: scores its part of the predictions file and posts the result (datasets/score-predictions.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { scorePart, type PartInput } from './score-predictions.js';

parentPort?.postMessage(await scorePart(workerData as PartInput));
