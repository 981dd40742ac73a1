/** One line of the lab's story, with the time. */
export const say = (s: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${s}\n`);
