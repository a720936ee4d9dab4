/** Age as kubectl prints it: 45s, 12m, 3h, 5d. */
export function age(timestamp: string | undefined, now: number): string {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
