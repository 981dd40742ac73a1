// A throwaway database on the machine's PostgreSQL (127.0.0.1:5432, trust auth).
import pg from 'pg';

const PG = process.env.FANOUT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432';

export async function pgDatabase() {
  const name = `fanout_test_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: `${PG}/test` });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: `${PG}/${name}`,
    async drop() {
      const c = new pg.Client({ connectionString: `${PG}/test` });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
