import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadLoopConfig } from '../../client/config-file.js';

describe('deploy/loop.example.yaml', () => {
  test('is a valid loop config naming the compose services', () => {
    const { config } = loadLoopConfig(fileURLToPath(new URL('../../deploy/loop.example.yaml', import.meta.url)));
    expect(config.models.policy.baseUrls).toEqual(['http://vllm-policy:8000/v1']);
    expect(config.training.backend).toBe('local');
    expect(config.evaluation.sets[0]?.files).toHaveLength(5);
  });
});
