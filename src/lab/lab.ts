export async function runLab(_o: unknown): Promise<number> { throw new Error("lab: not yet built"); }
