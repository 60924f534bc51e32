/**
 * Durations for people, once. Every caller passes milliseconds; the style says how it reads:
 *
 * - "units": the two largest units, no spaces: "4m12s", "2h3m", "3d1h", "0s" (token lifetimes,
 *   JWT times: `decode`, `token --verbose`);
 * - "clock": "1.5 s" under 10 s, "42 s", then "2m03s", "1h02m" (progress lines and summaries);
 * - "words": "1.5 s", then "2 min 3 s", "2 min" (messages: "not complete after 2 min").
 */
export type DurationStyle = 'units' | 'clock' | 'words';

export function formatDuration(ms: number, style: DurationStyle): string {
  switch (style) {
    case 'units':
      return twoUnits(ms);
    case 'clock':
      return clock(ms);
    case 'words':
      return words(ms);
  }
}

function twoUnits(ms: number): string {
  const s = Math.round(Math.abs(ms / 1000));
  const values = [
    Math.floor(s / 86400),
    Math.floor((s % 86400) / 3600),
    Math.floor((s % 3600) / 60),
    s % 60,
  ];
  const names = ['d', 'h', 'm', 's'];
  const i = values.findIndex((v) => v > 0);
  if (i < 0) return '0s';
  let out = `${values[i]}${names[i]}`;
  if (i < 3 && values[i + 1]! > 0) out += `${values[i + 1]}${names[i + 1]}`;
  return out;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function words(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m} min ${s} s` : `${m} min`;
}
