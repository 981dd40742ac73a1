// What a failed request says: the server's code and message when it sent ours, or why it was not reached.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** An error answer's body is a short JSON message: past this it is cut off (it may never end). */
export const MAX_ERROR_BODY = 64 * 1024;

/** The error a non-2xx answer stands for: the server's code, message and details when it sent ours. */
export function httpError(status: number, text: string, statusText = ''): HttpError {
  try {
    const { error } = JSON.parse(text);
    return new HttpError(
      status,
      error?.code ?? `HTTP_${status}`,
      error?.message ?? (text || statusText),
      error?.details,
    );
  } catch {
    return new HttpError(status, `HTTP_${status}`, text || statusText); // not JSON: the text itself
  }
}

/** PEM texts: the CA that signs the servers' certificates, and this client's own (mutual TLS). */
export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
}
