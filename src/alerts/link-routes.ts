// The resolve link of a ticket mail, served to anyone holding it (DESIGN §12).
import { z } from 'zod';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { type AlertDeps, resolve } from './routes.ts';

const Id = z.object({ id: z.string().min(1).max(200) });
const esc = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(title)}</title></head><body style="font-family:sans-serif;max-width:40rem;margin:2rem auto">${body}</body></html>`;

/**
 * The link in the e-mail: GET (and HEAD, as mail scanners send) only shows the ticket and a Resolve
 * button; the POST of that button resolves it. The link stands for the admin, for this ticket only, until it expires.
 */
export function ticketLinkRoutes(s: App, d: AlertDeps) {
  const Link = { params: Id, querystring: z.object({ exp: z.string().optional(), key: z.string().optional() }) };
  const checked = async (id: string, q: { exp?: string; key?: string }) => {
    const why = d.links.problem(id, q.exp, q.key);
    if (why) throw new FanoutError('FANOUT_ERR_TICKET_LINK', { id: `${id} (${why})` });
    return d.tickets.get(id);
  };
  s.get('/tickets/:id/resolve', { schema: Link }, async (req, reply) => {
    const t = await checked(req.params.id, req.query);
    const qs = new URLSearchParams(req.query as Record<string, string>).toString();
    const body =
      t.state === 'resolved'
        ? `<p>Ticket ${esc(t.id)} is already resolved.</p>`
        : `<h1>Ticket ${esc(t.id)}</h1><p>${esc(t.summary)}</p><p>State: ${esc(t.state)}</p>
<form method="post" action="?${esc(qs)}"><button type="submit">Resolve</button></form>
<p>Resolving also prepares the redistribution of the failed jobs, for approval.</p>`;
    return reply.type('text/html').send(page(`Ticket ${t.id}`, body));
  });
  s.post('/tickets/:id/resolve', { schema: Link }, async (req, reply) => {
    await checked(req.params.id, req.query);
    const r = await resolve(d, req.params.id, 'mail link');
    return reply
      .type('text/html')
      .send(
        page(
          `Ticket ${req.params.id}`,
          `<p>Ticket ${esc(req.params.id)} is resolved.${r.plans.length ? ` ${r.plans.length} redistribution plan(s) wait for approval in the dashboard.` : ''}</p>`,
        ),
      );
  });
}
