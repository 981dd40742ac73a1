// Step 2, classify: the alert's own type, else the first type whose pattern matches the message.
export interface Classified {
  failureType: string;
  how: string;
}

export class Classifier {
  private readonly rules: { type: string; re: RegExp; pattern: string }[];
  constructor(failureTypes: Record<string, { patterns: readonly string[] }>) {
    this.rules = Object.entries(failureTypes).flatMap(([type, ft]) =>
      ft.patterns.map((pattern) => ({ type, pattern, re: new RegExp(pattern, 'i') })),
    );
  }

  classify(declared: string | undefined, message: string | undefined): Classified {
    if (declared) return { failureType: declared, how: `declared by the alert: ${declared}` };
    for (const r of this.rules)
      if (message && r.re.test(message))
        return { failureType: r.type, how: `message matches "${r.pattern}" → ${r.type}` };
    return { failureType: 'UNKNOWN', how: 'no type given and no pattern matches the message → UNKNOWN' };
  }
}
