// Every list is paged: newest first, `limit` (default 200, at most 5000) from `offset`.
import { z } from 'zod';

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(5000).default(200),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
export type Page = z.infer<typeof PageQuery>;
export const FIRST_PAGE: Page = { limit: 200, offset: 0 };

/** `?view=summary`: a shorter answer for the dashboard (lists cut to counts); `full` by default. */
export const ViewQuery = z.object({ view: z.enum(['full', 'summary']).default('full') });
