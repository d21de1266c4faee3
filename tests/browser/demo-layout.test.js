// The demo must not jump as its data arrives (Lighthouse's cumulative layout
// shift was 0.66 on its mobile profile; good is under 0.1): the header, the
// tabs and the view keep their places from the first paint, on a first
// visit and on a reload, at phone and desktop widths.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './harness.js';
import { buildSite, startSite, removeTemps } from './pwa-helpers.js';

after(removeTemps);

test('the_demo_should_not_shift_its_layout_while_it_opens_and_loads_data', { timeout: 180_000 }, async () => {
  const { dir } = await buildSite('layout');
  const site = await startSite({ web: dir });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    for (const width of [360, 412, 1350]) {
      const context = await browser.newContext({ viewport: { width, height: 823 } });
      try {
        const page = await context.newPage();
        await page.addInitScript(() => {
          window.__shifts = [];
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
              if (!e.hadRecentInput) window.__shifts.push({ value: e.value, nodes: e.sources.map((s) => s.node?.id || s.node?.nodeName || '?') });
            }
          }).observe({ type: 'layout-shift', buffered: true });
        });
        for (const visit of ['first visit', 'reload']) {
          if (visit === 'first visit') await page.goto(`${site.url}/`);
          else await page.reload();
          await page.waitForSelector('#visit-list li[data-id="visit-1"]', { timeout: 60_000 });
          // Whatever renders after the first row (counts, status, storage line) has had its turn.
          await page.waitForFunction(() => /used of/.test(document.querySelector('#storage-line')?.textContent || ''), null, { timeout: 30_000 });
          await page.waitForTimeout(500);
          const shifts = await page.evaluate(() => window.__shifts);
          const total = shifts.reduce((a, s) => a + s.value, 0);
          assert.ok(total < 0.02, `${width}px, ${visit}: layout shift ${total.toFixed(3)} (${JSON.stringify(shifts)})`);
        }
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
    await site.close();
  }
});

// The app shell: the view's heading, help and form are on screen from the
// page's own few modules, before ferry's modules, its wasm and the first
// sync (Lighthouse's largest contentful paint was the help text, painted
// only after the first sync: 5.1 s on its mobile profile).
test('the_demo_should_paint_its_view_before_ferry_is_loaded', { timeout: 120_000 }, async () => {
  const { dir } = await buildSite('shell');
  const site = await startSite({ web: dir });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 412, height: 823 } });
    const page = await context.newPage();
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    let asked = false;
    await page.route('**/bindings/index.js', async (route) => { asked = true; await held; await route.continue(); });
    await page.goto(`${site.url}/`);
    await page.waitForSelector('#view .help', { timeout: 30_000 });
    assert.match(await page.textContent('#view .help'), /Visits sync with the server/);
    assert.match(await page.textContent('#view'), /Opening the database on this device/);
    assert.equal(await page.locator('#visit-form button[type=submit]').isDisabled(), true, 'the shell\'s form cannot save yet');
    assert.equal(await page.evaluate(() => !!window.db), false);
    assert.ok(asked, 'ferry is requested once the shell is painted');
    release();
    await page.waitForSelector('#visit-list li[data-id="visit-1"]', { timeout: 60_000 });
    assert.equal(await page.locator('#visit-form button[type=submit]').isDisabled(), false);
    await context.close();
  } finally {
    await browser.close();
    await site.close();
  }
});
