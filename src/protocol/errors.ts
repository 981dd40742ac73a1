// Stable error codes (FANOUT_ERR_<AREA>_<WHAT>), mapped to HTTP status in one place.
export const errorStatus = {
  FANOUT_ERR_AUTH_MISSING: 401,
  FANOUT_ERR_AUTH_INVALID: 401,
  FANOUT_ERR_AUTH_FORBIDDEN: 403,
  FANOUT_ERR_INPUT_INVALID: 400,
  FANOUT_ERR_INVENTORY_INVALID: 400,
  FANOUT_ERR_DEVICE_UNKNOWN: 404,
  FANOUT_ERR_PACKAGE_INVALID: 400,
  FANOUT_ERR_PACKAGE_UNKNOWN: 404,
  FANOUT_ERR_JOB_UNKNOWN: 404,
  FANOUT_ERR_JOB_NO_TARGETS: 400,
  FANOUT_ERR_BLOB_UNKNOWN: 404,
  FANOUT_ERR_ALERT_INVALID: 400,
  FANOUT_ERR_TICKET_UNKNOWN: 404,
  FANOUT_ERR_PLAN_UNKNOWN: 404,
  FANOUT_ERR_PLAN_STATE: 409,
  FANOUT_ERR_FAULTS_DISABLED: 403,
  FANOUT_ERR_RELAY_UNREACHABLE: 502,
  FANOUT_ERR_NOT_FOUND: 404,
  FANOUT_ERR_INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class FanoutError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.code = code;
    this.details = details;
  }
  get statusCode(): number {
    return errorStatus[this.code];
  }
  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export const fail = (code: ErrorCode, message: string, details?: unknown): never => {
  throw new FanoutError(code, message, details);
};
