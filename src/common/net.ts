// Addresses as the command line gives them: "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT".
export function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  const [host, portText] = i < 0 ? ['', s] : [s.slice(0, i), s.slice(i + 1)];
  const port = Number(portText);
  // Said in the operator's words, not as Node's "options.port should be >= 0 and < 65536".
  if (!/^\d+$/.test(portText) || port > 65_535)
    throw new Error(`--listen "${s}" is not HOST:PORT, :PORT or PORT with a port from 0 to 65535`);
  return [host.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port];
}
