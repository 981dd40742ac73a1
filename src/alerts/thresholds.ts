// Step 8, threshold: the device's override for the type, else the type's limit, else the default.
import type { AlertsConfig } from './config.ts';

export interface Limit {
  limit: number;
  source: string;
}

export function thresholdFor(
  cfg: AlertsConfig,
  deviceId: string,
  failureType: string,
  runtimeOverride?: number,
): Limit {
  if (runtimeOverride !== undefined)
    return { limit: runtimeOverride, source: `override for ${deviceId} (set at run time)` };
  const fileOverride = cfg.deviceOverrides[deviceId]?.[failureType];
  if (fileOverride !== undefined) return { limit: fileOverride, source: `override for ${deviceId} in the config` };
  const typeLimit = cfg.failureTypes[failureType]?.threshold;
  if (typeLimit !== undefined) return { limit: typeLimit, source: `threshold of ${failureType}` };
  return { limit: cfg.defaultThreshold, source: 'default threshold' };
}
