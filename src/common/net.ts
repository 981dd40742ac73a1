// Addresses as the command line gives them: "HOST:PORT", ":PORT" or "PORT".
export function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(s)];
  return [s.slice(0, i) || '127.0.0.1', Number(s.slice(i + 1))];
}
