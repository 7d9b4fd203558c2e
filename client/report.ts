import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { MEMBER_ROLE_DISPLAY_ORDER } from '../core/iteration-table.js';
import { BESIDE_OVERALL } from '../core/stages/bfcl-overall.js';
import { loopReportData, type LoopReportData } from '../db/queries/report.js';
import { type DecontamReport, decontamReportsForLoop } from '../db/queries/decontam.js';
import { findChromium, screenshotFile } from './chromium.js';

/** A loop's report: its data from the database, and when it was made. */
export interface LoopReport extends LoopReportData {
  loopName: string;
  generatedAt: string;
  /** Overlap of each of the loop's dataset versions with the evaluation sets (one entry per version and index). */
  decontamination: DecontamReport[];
}

/** Everything the report shows. */
export async function buildLoopReport(pool: pg.Pool, loopName: string): Promise<LoopReport> {
  return {
    loopName,
    generatedAt: new Date().toISOString(),
    ...(await loopReportData(pool, loopName)),
    decontamination: await decontamReportsForLoop(pool, loopName),
  };
}

const escape = (text: string) =>
  text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/** A line chart of several series over iterations, as a standalone SVG. */
export function lineChartSvg(title: string, series: { name: string; points: [number, number][] }[], yMax = 1): string {
  const [w, h, left, bottom, top] = [560, 300, 50, 40, 30];
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const [xMin, xMax] = [Math.min(0, ...xs), Math.max(1, ...xs)];
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin || 1)) * (w - left - 130);
  const py = (y: number) => h - bottom - (y / yMax) * (h - bottom - top);
  const grid = [0, 0.25, 0.5, 0.75, 1].map(
    (f) =>
      `<line x1="${left}" x2="${w - 130}" y1="${py(f * yMax)}" y2="${py(f * yMax)}" stroke="#ddd"/><text x="${left - 6}" y="${py(f * yMax) + 4}" font-size="10" text-anchor="end">${Math.round(f * yMax * 100)}%</text>`,
  );
  const ticks = [...new Set(xs)]
    .sort((a, b) => a - b)
    .map((x) => `<text x="${px(x)}" y="${h - bottom + 16}" font-size="10" text-anchor="middle">${x}</text>`);
  const lines = series.map((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = s.points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ');
    return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${path}"/>${s.points.map(([x, y]) => `<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${color}"/>`).join('')}<text x="${w - 120}" y="${top + 14 * i + 10}" font-size="11" fill="${color}">${escape(s.name)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><text x="${left}" y="18" font-size="13" font-weight="bold">${escape(title)}</text>${grid.join('')}${ticks.join('')}<text x="${(w - 130) / 2}" y="${h - 6}" font-size="10">iteration</text>${lines.join('')}</svg>`;
}

/** A stacked bar chart (one bar per iteration), as a standalone SVG. */
export function stackedBarsSvg(
  title: string,
  bars: { label: string; parts: Record<string, number> }[],
  keys: string[],
): string {
  const [w, h, left, bottom, top] = [560, 300, 50, 40, 30];
  const max = Math.max(1, ...bars.map((b) => keys.reduce((sum, k) => sum + (b.parts[k] ?? 0), 0)));
  const band = (w - left - 130) / Math.max(1, bars.length);
  const py = (v: number) => ((h - bottom - top) * v) / max;
  const rects = bars.map((bar, i) => {
    let y = h - bottom;
    const x = left + i * band + band * 0.15;
    const parts = keys.map((key, k) => {
      const height = py(bar.parts[key] ?? 0);
      y -= height;
      return height > 0
        ? `<rect x="${x}" y="${y}" width="${band * 0.7}" height="${height}" fill="${PALETTE[k % PALETTE.length]}"><title>${escape(key)}: ${bar.parts[key]}</title></rect>`
        : '';
    });
    return `${parts.join('')}<text x="${x + band * 0.35}" y="${h - bottom + 16}" font-size="10" text-anchor="middle">${escape(bar.label)}</text>`;
  });
  const legend = keys.map(
    (key, k) =>
      `<rect x="${w - 120}" y="${top + 14 * k}" width="10" height="10" fill="${PALETTE[k % PALETTE.length]}"/><text x="${w - 105}" y="${top + 14 * k + 9}" font-size="11">${escape(key)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif"><text x="${left}" y="18" font-size="13" font-weight="bold">${escape(title)}</text><text x="${left - 6}" y="${top + 4}" font-size="10" text-anchor="end">${max}</text>${rects.join('')}${legend.join('')}</svg>`;
}

function table(headers: string[], rows: (string | number)[][]): string {
  return `<table><tr>${headers.map((h) => `<th>${escape(h)}</th>`).join('')}</tr>${rows
    .map((row) => `<tr>${row.map((cell) => `<td>${escape(String(cell))}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

const ROLES = MEMBER_ROLE_DISPLAY_ORDER;

/** The report's charts as standalone SVG documents, by file name. */
export function reportCharts(report: LoopReport): Record<string, string> {
  const categories = [...new Set(report.accuracy.map((a) => `${a.evalSet}/${a.category}`))];
  const accuracySeries = categories.map((name) => ({
    name,
    points: report.accuracy
      .filter((a) => `${a.evalSet}/${a.category}` === name)
      .map((a) => [a.iteration, a.accuracy] as [number, number]),
  }));
  const roles = ROLES.filter((role) => report.composition.some((c) => (c.byRole[role] ?? 0) > 0));
  const statuses = [...new Set(report.expansions.map((e) => e.status))];
  const verdicts = [...new Set(report.judgements.map((j) => j.verdict))];
  const iterations = [
    ...new Set([...report.expansions.map((e) => e.iteration), ...report.judgements.map((j) => j.iteration)]),
  ].sort((a, b) => a - b);
  return {
    'accuracy.svg': lineChartSvg('Held-out accuracy by category', accuracySeries),
    'composition.svg': stackedBarsSvg(
      'Dataset composition by role',
      report.composition.map((c) => ({ label: `D${c.iteration}`, parts: c.byRole })),
      roles,
    ),
    'judgements.svg': stackedBarsSvg(
      'Judge verdicts on mismatches',
      iterations.map((i) => ({
        label: `it ${i}`,
        parts: Object.fromEntries(report.judgements.filter((j) => j.iteration === i).map((j) => [j.verdict, j.n])),
      })),
      verdicts,
    ),
    'expansions.svg': stackedBarsSvg(
      'Expansion outcomes',
      iterations.map((i) => ({
        label: `it ${i}`,
        parts: Object.fromEntries(report.expansions.filter((e) => e.iteration === i).map((e) => [e.status, e.n])),
      })),
      statuses,
    ),
  };
}

/** A self-contained HTML page: charts inline, tables of every number, no external assets. */
export function renderReportHtml(report: LoopReport): string {
  const charts = reportCharts(report);
  const percent = (v: number) => `${(v * 100).toFixed(1)}%`;
  const summary = bfclSummaryTable(report.accuracy);
  return `<!doctype html><html><head><meta charset="utf-8"><title>looptool report: ${escape(report.loopName)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}.charts{display:flex;flex-wrap:wrap;gap:1em}</style></head><body>
<h1>Loop ${escape(report.loopName)}</h1><p>Generated ${escape(report.generatedAt)}.</p>
<div class="charts">${Object.values(charts).join('')}</div>
<h2>Held-out accuracy (BFCL v3 overall)</h2>
<p>Overall = unweighted mean of Non-Live, Live and Multi-Turn (BFCL v3); relevance and irrelevance beside it.</p>${table(
    summary.headers,
    summary.rows,
  )}
<h2>Accuracy by category</h2>${table(
    ['iteration', 'eval set', 'category', 'correct', 'total', 'accuracy'],
    report.accuracy.map((a) => [a.iteration, a.evalSet, a.category, a.correct, a.total, percent(a.accuracy)]),
  )}
<h2>Dataset composition (Table 3)</h2>${table(
    ['dataset', 'total', ...ROLES],
    report.composition.map((c) => [c.ref, c.total, ...ROLES.map((r) => c.byRole[r] ?? 0)]),
  )}
${decontaminationSectionHtml(report.decontamination)}
<h2>Probe outcomes (GCP)</h2>
<p>too_long: prompts longer than the policy's context or the training prompt budget; not asked, never error seeds, left
out of training exports.</p>${table(
    ['iteration', 'outcome', 'samples'],
    report.probes.map((p) => [p.iteration, p.outcome, p.n]),
  )}
<h2>Label verification</h2>${table(
    ['iteration', 'verdict', 'samples', 'labels corrected'],
    report.judgements.map((j) => [j.iteration, j.verdict, j.n, j.corrected]),
  )}
<h2>Expansion yield</h2>${table(
    ['iteration', 'status', 'samples'],
    report.expansions.map((e) => [e.iteration, e.status, e.n]),
  )}
<h2>Model calls per stage</h2>${table(
    ['iteration', 'stage', 'calls', 'prompt tokens', 'completion tokens', 'model time (s)'],
    report.calls.map((c) => [
      c.iteration,
      c.stage,
      c.calls,
      c.promptTokens,
      c.completionTokens,
      c.latencySeconds.toFixed(1),
    ]),
  )}
<h2>Training</h2>${table(
    ['iteration', 'status', 'seconds', 'checkpoint'],
    report.training.map((t) => [
      t.iteration,
      t.status,
      t.seconds === null ? '' : t.seconds.toFixed(1),
      t.checkpoint ?? '',
    ]),
  )}
</body></html>`;
}

/**
 * BFCL v3's summary per iteration and eval set: Non-Live, Live, Multi-Turn, the overall (core/stages/bfcl-overall.ts
 * computed them when the evaluation was stored), then the relevance and irrelevance categories reported beside it.
 * A cell is `–` where that part was not evaluated.
 */
export function bfclSummaryTable(accuracy: LoopReportData['accuracy']): { headers: string[]; rows: string[][] } {
  const columns = [
    ['non_live', 'Non-Live'],
    ['live', 'Live'],
    ['multi_turn', 'Multi-Turn'],
    ['overall', 'overall'],
    ...BESIDE_OVERALL.map((category) => [category, category]),
  ] as const;
  const keys = [...new Set(accuracy.map((a) => `${a.iteration}\u0000${a.evalSet}`))];
  const rows = keys.flatMap((key) => {
    const [iteration, evalSet] = key.split('\u0000') as [string, string];
    const cells = accuracy.filter((a) => String(a.iteration) === iteration && a.evalSet === evalSet);
    if (!cells.some((a) => a.category === 'overall')) return [];
    const value = (category: string) => {
      const cell = cells.find((a) => a.category === category);
      return cell ? `${(cell.accuracy * 100).toFixed(1)}%` : '–';
    };
    return [
      [iteration === '0' ? '0 (base model)' : iteration, evalSet, ...columns.map(([category]) => value(category))],
    ];
  });
  return { headers: ['iteration', 'eval set', ...columns.map(([, label]) => label)], rows };
}

/**
 * The decontamination section: per dataset version, how many members share a tool name or an n-gram with the
 * evaluation sets it was checked against, and what is shared most. Empty when no version was checked.
 */
export function decontaminationSectionHtml(reports: readonly DecontamReport[]): string {
  if (reports.length === 0) return '';
  const share = (n: number, of: number) => `${n} (${of === 0 ? '0.0' : ((n / of) * 100).toFixed(1)}%)`;
  return `<h2>Decontamination (overlap with the evaluation sets)</h2>${table(
    ['dataset', 'members', 'tool-name overlap', 'n-gram overlap', 'both', 'evaluation files', 'most shared'],
    reports.map((r) => [
      r.ref,
      r.members,
      share(r.toolNameOverlaps, r.members),
      share(r.ngramOverlaps, r.members),
      r.bothOverlaps,
      `${r.sources.map((s) => s.file).join(', ')} (${r.ngram}-grams)`,
      [...r.topQuestions.slice(0, 3).map((q) => q.question), ...r.topToolNames.slice(0, 3).map((t) => t.name)].join(
        ', ',
      ),
    ]),
  )}`;
}

/**
 * Writes the report to `dir`: report.html (self-contained), report.json (every number), one SVG per chart, and the
 * charts as PNG when a headless Chromium is available (the PNGs are skipped, with a reason, when it is not).
 */
export function writeReport(report: LoopReport, dir: string): { html: string; pngs: string[]; pngNote?: string } {
  mkdirSync(dir, { recursive: true });
  const html = path.join(dir, 'report.html');
  writeFileSync(html, renderReportHtml(report));
  writeFileSync(path.join(dir, 'report.json'), JSON.stringify(report, null, 2));
  const chromium = findChromium();
  const pngs: string[] = [];
  for (const [file, svg] of Object.entries(reportCharts(report))) {
    const svgPath = path.join(dir, file);
    writeFileSync(svgPath, svg);
    if (chromium) {
      const png = svgPath.replace(/\.svg$/, '.png');
      screenshotFile(chromium, svgPath, png, { width: 560, height: 300 });
      pngs.push(png);
    }
  }
  return {
    html,
    pngs,
    ...(chromium ? {} : { pngNote: 'no Chromium found (set CHROMIUM_PATH), so the charts are SVG only' }),
  };
}
