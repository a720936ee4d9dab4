// A small YAML writer for JSON values (objects, arrays, strings, numbers, booleans, null): every string is
// written as a JSON string, which YAML reads as the same double-quoted scalar, so nothing is ambiguous
// ("no", "1.0", "" stay strings). The server parses what the user edits (server-side apply takes YAML).

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;

function key(k: string): string {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

function isEmpty(value: unknown): boolean {
  return Array.isArray(value) ? value.length === 0 : typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

function lines(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (typeof item === "object" && item !== null && !isEmpty(item)) {
        const [first, ...rest] = lines(item, indent + "  ");
        return [`${indent}- ${first.trimStart()}`, ...rest];
      }
      return [`${indent}- ${isEmpty(item) ? (Array.isArray(item) ? "[]" : "{}") : scalar(item)}`];
    });
  }
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => {
      if (typeof v === "object" && v !== null && !isEmpty(v)) return [`${indent}${key(k)}:`, ...lines(v, indent + "  ")];
      return [`${indent}${key(k)}: ${isEmpty(v) ? (Array.isArray(v) ? "[]" : "{}") : scalar(v)}`];
    });
  }
  return [`${indent}${scalar(value)}`];
}

export function toYAML(value: unknown): string {
  return lines(value, "").join("\n") + "\n";
}
