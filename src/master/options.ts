// What `fanout master` is started with (its flags, as buildMaster takes them).
import type { ServerOptions } from '../common/server.ts';
import type { ClientTlsFiles, ServerTlsFiles } from '../common/tls.ts';

export interface MasterOptions {
  data: string;
  listen: string;
  db?: string;
  config?: string;
  allowFaults?: boolean;
  /** A key file shared by several masters (DESIGN §15); default DATA/signing.key. */
  signingKey?: string;
  /** Where package content lives (DESIGN §15): `postgres` (the shared database) or a folder; default DATA/blobs. */
  blobs?: string;
  onRoute?: ServerOptions['onRoute'];
  /** Serve HTTPS (and require client certificates with `clientCa`). */
  tls?: ServerTlsFiles;
  /** How this daemon's clients check the servers it calls (--ca, --client-cert/--client-key). */
  clientTls?: ClientTlsFiles;
  /** The URL others should use to reach this daemon (behind a proxy or a name). */
  advertise?: string;
}
