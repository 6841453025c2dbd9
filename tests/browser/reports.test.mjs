// The reports page in Chromium: traffic seeded through the real HTTP API,
// the charts and numbers show it, a number opens the conversations behind
// it (by keyboard), one of them opens its transcript, and axe-core finds no
// serious or critical violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WAIT = { timeout: 15000 };

let w;
let seeded;
before(async () => {
  w = await world();
  seeded = await seed();
});
after(async () => { await w?.close(); });

/** A visitor's conversation through the visitor API; returns its id. */
async function visitor(name, texts) {
  const c = await w.bot.api('POST', '/conversations', null, { name, page_url: 'https://shop.example/' });
  const replies = [];
  for (const [i, text] of texts.entries()) {
    const r = await w.bot.api('POST', `/conversations/${c.id}/messages`, c.token, { text, client_id: 'm' + i });
    replies.push(r.records.map((x) => x.event));
  }
  return { id: c.id, token: c.token, replies };
}

/** Today's traffic: two answered, one off-topic and gone, one who asked
 * for a person (an agent answered, closed, and was rated), one who never
 * wrote. The bot's outcomes are checked as they happen. */
async function seed() {
  const a = await visitor('Ada', ['How much is shipping to Canada?']);
  assert.equal(a.replies[0].find((e) => e.type === 'bot_reply')?.intent, 'shipping_cost');
  const b = await visitor('Bo', ['how do returns work with you guys']);
  assert.equal(b.replies[0].find((e) => e.type === 'bot_reply')?.intent, 'return_policy');
  const c = await visitor('Cy', ["What's the weather like tomorrow?"]);
  assert.ok(c.replies[0].some((e) => e.type === 'fallback'));
  const d = await visitor('Di', ['can i chat with a live person']);
  assert.equal(d.replies[0].find((e) => e.type === 'handoff')?.reason, 'asked');
  await w.bot.api('POST', '/conversations', null, { name: 'Silent' });
  const agent = await w.bot.agent('ana');
  await w.bot.api('POST', `/agent/conversations/${d.id}/claim`, agent);
  await w.bot.api('POST', `/agent/conversations/${d.id}/messages`, agent, { text: 'Hi Di, Ana here.' });
  await w.bot.api('POST', `/agent/conversations/${d.id}/close`, agent);
  await w.bot.api('POST', `/conversations/${d.id}/rating`, d.token, { score: 5, comment: 'lovely' });
  return { handedOff: d.id, contained: [a.id, b.id], abandoned: c.id };
}

function day(ms) { return new Date(ms).toISOString().slice(0, 10); }

async function reports() {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  // The server has no [business_hours]: its days are UTC days.
  const today = day(Date.now());
  await page.goto(`${w.bot.origin}/reports?from=${day(Date.now() - 6 * 864e5)}&to=${today}`);
  await page.fill('#token', w.bot.admin);
  await page.click('#login-form button[type=submit]');
  await page.locator('#outcomes .card').first().waitFor(WAIT);
  return { ctx, page, errors, today };
}


test('the reports page shows the seeded traffic in its charts and numbers', async () => {
  const { ctx, page, errors, today } = await reports();
  // The cohort: four conversations with a visitor message (the silent one
  // is left out).
  assert.equal(await page.locator('#outcomes button.num[data-filter=cohort]').innerText(), '4');
  const card = (f) => page.locator('#outcomes .card', { has: page.locator(`button.num[data-filter=${f}]`) });
  assert.match(await card('contained').innerText(), /50%[\s\S]*2 of 4/);
  assert.match(await card('handed_off').innerText(), /25%[\s\S]*1 of 4/);
  assert.match(await card('abandoned').innerText(), /25%[\s\S]*1 of 4/);
  // The volume chart: today's stacked bars are 2 contained, 1 handed off,
  // 1 abandoned, labelled with the day, total 4; its table says the same.
  const label = today.slice(5);
  const bars = page.locator(`#volume svg rect.bar[data-label="${label}"]`);
  const got = {};
  for (const r of await bars.all()) got[await r.getAttribute('data-series')] = Number(await r.getAttribute('data-value'));
  assert.deepEqual(got, { contained: 2, handed_off: 1, abandoned: 1 });
  assert.ok((await page.locator('#volume svg text.total').allTextContents()).includes('4'));
  assert.match(await page.locator('#volume svg').getAttribute('aria-label'), new RegExp(label + ' Contained 2, Handed off 1, Abandoned 1'));
  const row = page.locator('#volume tr', { has: page.locator(`th:text-is("${today}")`) });
  assert.deepEqual(await row.locator('td').allInnerTexts(), ['4', '2', '1', '1']);
  // The handoff, its wait and the rating are in their sections.
  const asked = page.locator('#reasons tr', { hasText: '(asked)' });
  assert.match(await asked.innerText(), /25%[\s\S]*1 of 4/);
  assert.match(await page.locator('#times').innerText(), /Wait \(handoff → agent joins\)\s+1\b/);
  assert.match(await page.locator('#comments').innerText(), /5 of 5[\s\S]*lovely/);
  // Intents: shipping_cost and return_policy answered once each.
  assert.equal(await page.locator('#intents svg rect.bar[data-label=shipping_cost]').getAttribute('data-value'), '1');
  assert.equal(await page.locator('#intents svg rect.bar[data-label=return_policy]').getAttribute('data-value'), '1');
  // Failures: the one off-topic message.
  assert.equal(await page.locator('#failures svg rect.bar[data-label="fallback · out_of_scope"]').getAttribute('data-value'), '1');
  assert.deepEqual(errors, []);
  if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT, fullPage: true });
  await ctx.close();
});

test('a number opens the conversations behind it, by keyboard, and one opens its transcript', async () => {
  const { ctx, page, errors } = await reports();
  const handed = page.locator('#outcomes button.num[data-filter=handed_off]');
  await handed.focus();
  await page.keyboard.press('Enter');
  await page.locator('#rows tbody tr').first().waitFor(WAIT);
  assert.match(await page.locator('#drill-h').innerText(), /Handed off \(1\)/);
  // Focus moved to the list, for keyboard and screen-reader users.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'drill-h');
  const rows = page.locator('#rows tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().innerText(), /Di[\s\S]*can i chat with a live person[\s\S]*handed_off · asked[\s\S]*5 of 5/);
  const open = rows.first().getByRole('button', { name: /Open the conversation/ });
  assert.equal(await open.getAttribute('data-id'), seeded.handedOff);
  await open.focus();
  await page.keyboard.press('Enter');
  await page.locator('#events .ev').first().waitFor(WAIT);
  const transcript = await page.locator('#events').innerText();
  assert.match(transcript, /can i chat with a live person/);
  assert.match(transcript, /Hi Di, Ana here\./);
  // The contained number lists the two answered conversations.
  await page.locator('#outcomes button.num[data-filter=contained]').click();
  await page.waitForFunction(() => /\(2\)/.test(document.getElementById('drill-h').textContent));
  const ids = await page.locator('#rows tbody button[data-id]').evaluateAll((bs) => bs.map((b) => b.dataset.id));
  assert.deepEqual(ids.sort(), [...seeded.contained].sort());
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a verdict that needs days to pass shows as pending, and opens its conversations', async () => {
  const { ctx, page, errors } = await reports();
  // Di's conversation was closed by an agent today: its fcr_days have not
  // passed, so FCR has no judged conversation and one pending.
  const fcr = page.locator('#outcomes .card', { has: page.locator('button.num[data-filter=fcr]') });
  assert.match(await fcr.innerText(), /0 of 0/);
  const pending = fcr.locator('button.num[data-filter=fcr_pending]');
  assert.equal(await pending.innerText(), '1 pending');
  await pending.focus();
  await page.keyboard.press('Enter');
  await page.locator('#rows tbody tr').first().waitFor(WAIT);
  const ids = await page.locator('#rows tbody button[data-id]').evaluateAll((bs) => bs.map((b) => b.dataset.id));
  assert.deepEqual(ids, [seeded.handedOff]);
  // Nothing contained is pending (both are anonymous): no pending note.
  const durable = page.locator('#outcomes .card', { has: page.locator('button.num[data-filter=durable]') });
  assert.equal(await durable.locator('button.num[data-filter=durable_pending]').count(), 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('axe-core: no serious or critical violations on the reports page, drill-down and transcript open', async () => {
  const { ctx, page } = await reports();
  await page.locator('#outcomes button.num[data-filter=abandoned]').click();
  await page.locator('#rows tbody tr').first().waitFor(WAIT);
  await page.locator('#rows tbody button[data-id]').first().click();
  await page.locator('#events .ev').first().waitFor(WAIT);
  assert.deepEqual(await axe(page), []);
  await ctx.close();
});

test("a day's segment of the volume chart opens exactly that day's conversations of that outcome", async () => {
  const { ctx, page, errors, today } = await reports();
  const label = today.slice(5);
  const ids = () => page.locator('#rows tbody button[data-id]').evaluateAll((bs) => bs.map((b) => b.dataset.id).sort());
  const opened = async (n) => {
    await page.waitForFunction((n) => new RegExp('\\(' + n + '\\)$').test(document.getElementById('drill-h').textContent), n);
    await page.locator('#rows tbody tr').nth(n - 1).waitFor(WAIT);
  };
  // The handed-off segment: the one handed-off conversation, not the day's four.
  await page.locator(`#volume svg rect.bar[data-label="${label}"][data-series=handed_off]`).click();
  await opened(1);
  assert.match(await page.locator('#drill-h').innerText(), new RegExp('handed off on ' + today));
  assert.deepEqual(await ids(), [seeded.handedOff]);
  // The contained segment: the two answered ones.
  await page.locator(`#volume svg rect.bar[data-label="${label}"][data-series=contained]`).click();
  await opened(2);
  assert.deepEqual(await ids(), [...seeded.contained].sort());
  // By keyboard, from the chart's table: the abandoned count of the day.
  const abandoned = page.locator(`#volume button.num[data-filter=abandoned][data-day="${today}"]`);
  await abandoned.focus();
  await page.keyboard.press('Enter');
  await opened(1);
  assert.deepEqual(await ids(), [seeded.abandoned]);

  // The API: a day with a filter is that day only; a day outside the window is refused.
  const from = day(Date.now() - 6 * 864e5);
  const q = (f, d) => `/admin/reports/conversations?from=${from}&to=${today}&filter=${f}&day=${d}`;
  assert.equal((await w.bot.api('GET', q('contained', today), w.bot.admin)).total, 2);
  assert.equal((await w.bot.api('GET', q('contained', from), w.bot.admin)).total, 0);
  const out = await fetch(w.bot.origin + '/api/v1' + q('contained', '2001-01-01'), { headers: { authorization: 'Bearer ' + w.bot.admin } });
  assert.equal(out.status, 400);
  assert.equal((await out.json()).error.code, 'bad_report_window');
  // The CSV takes the same filter and day: one row for the handoff.
  const csv = await fetch(w.bot.origin + `/api/v1/admin/reports/conversations.csv?from=${from}&to=${today}&filter=handed_off&day=${today}`,
    { headers: { authorization: 'Bearer ' + w.bot.admin } });
  assert.equal(csv.status, 200);
  const lines = (await csv.text()).trim().split('\n');
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.ok(lines[1].startsWith(`"${seeded.handedOff}"`), lines[1]);
  assert.deepEqual(errors, []);
  await ctx.close();
});
