// Issue 18, item 7: the widget details a newcomer hit, in Debian's
// Chromium against the real server. Run: `cargo build && node --test
// --test-concurrency=1 widget-details.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WIDGET = [['frontdesk-widget', '.root']];
const WAIT = { timeout: 15000 };

let w;
before(async () => { w = await world(); });
after(async () => { await w?.close(); });

const widget = (page, css) => page.locator('frontdesk-widget ' + css);
/** The element focused inside the widget's shadow root, as `tag.class`. */
const focused = (page) => page.evaluate(() => {
  const a = document.querySelector('frontdesk-widget').shadowRoot.activeElement;
  return a ? a.tagName.toLowerCase() + (a.className ? '.' + a.className : '') : 'outside';
});
const stored = (page) => page.evaluate(() => {
  const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
  return JSON.parse(localStorage.getItem(k));
});


test('keyboard only: a quick reply keeps focus in the panel and Escape still closes it; links are links; one "Talk to a person"', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.hosts.origin + '/plain');
  // The launcher is a drawing, not an emoji that may show as a box.
  const launch = widget(page, '.launch');
  assert.equal(await launch.locator('svg').count(), 1);
  assert.equal((await launch.innerText()).trim(), '');
  await launch.focus();
  await page.keyboard.press('Enter');
  assert.equal(await focused(page), 'textarea');
  await page.keyboard.type('how do I reset my password');
  await page.keyboard.press('Enter');
  const answer = widget(page, '.msg.bot').filter({ hasText: 'reset your password' });
  await answer.waitFor(WAIT);
  // The address is a link that opens apart from the page.
  const link = answer.locator('a[href="https://example.com/account/reset"]');
  assert.equal(await link.count(), 1);
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.innerText(), 'https://example.com/account/reset');
  // The intent offers "Talk to a person" as a quick reply; the footer has
  // it already, so it shows once.
  assert.equal(await page.getByRole('button', { name: 'Talk to a person' }).count(), 1);
  const track = widget(page, '.qr button').filter({ hasText: 'Track my order' });
  await track.waitFor(WAIT);
  await track.focus();
  await page.keyboard.press('Enter');
  await widget(page, '.msg.me').filter({ hasText: 'Track my order' }).waitFor(WAIT);
  assert.equal(await focused(page), 'textarea', 'focus stays in the panel');
  await page.keyboard.press('Escape');
  assert.ok(await widget(page, '.panel').isHidden(), 'Escape closes the panel');
  assert.equal(await focused(page), 'button.launch');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('"Talk to a person" leaves the footer once a person is asked for, by keyboard without losing focus, and comes back at the close', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.hosts.origin + '/plain');
  await widget(page, '.launch').focus();
  await page.keyboard.press('Enter');
  await page.keyboard.type('my parcel is late');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.bot').first().waitFor(WAIT);
  const person = widget(page, '.person');
  await person.focus();
  await page.keyboard.press('Enter');
  await widget(page, '.status').filter({ hasText: 'queue' }).waitFor(WAIT);
  assert.ok(await person.isHidden(), 'no offer of a person while one is asked for');
  assert.equal(await focused(page), 'textarea', 'focus stays in the panel');
  const conv = await page.evaluate(() => {
    const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
    return JSON.parse(localStorage.getItem(k)).conv.id;
  });
  const agent = await w.bot.agent('kim');
  await w.bot.api('POST', `/agent/conversations/${conv}/claim`, agent);
  await w.bot.api('POST', `/agent/conversations/${conv}/close`, agent);
  await widget(page, '.sys').filter({ hasText: 'closed' }).waitFor(WAIT);
  assert.ok(await person.isVisible(), 'offered again once the conversation is closed');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a reload brings the panel back open while a conversation is under way, and closed when it was closed', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.hosts.origin + '/plain');
  await widget(page, '.launch').click();
  await widget(page, 'textarea').fill('what are your opening hours');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.bot').first().waitFor(WAIT);
  await page.reload();
  await widget(page, '.msg.me').filter({ hasText: 'opening hours' }).waitFor(WAIT);
  assert.ok(await widget(page, '.panel').isVisible(), 'open after the reload');
  assert.equal(await widget(page, '.launch').getAttribute('aria-expanded'), 'true');
  await widget(page, '.x').click();
  await page.reload();
  await widget(page, '.launch').waitFor(WAIT);
  await page.waitForTimeout(300);
  assert.ok(await widget(page, '.panel').isHidden(), 'closed after the reload');
  await ctx.close();
});

test('a reply that comes while the panel is closed shows on the launcher; the rating takes a comment and keeps the closing line in view', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.hosts.origin + '/plain');
  await widget(page, '.launch').click();
  await widget(page, '.person').click();
  await widget(page, '.status').filter({ hasText: 'in the queue' }).waitFor(WAIT);
  const id = (await stored(page)).conv.id;
  await widget(page, '.x').click();
  const badge = widget(page, '.badge');
  assert.ok(await badge.isHidden());

  const token = await w.bot.agent('uma');
  await w.bot.api('POST', `/agent/conversations/${id}/claim`, token);
  await w.bot.api('POST', `/agent/conversations/${id}/messages`, token, { text: 'Hello, Uma here.' });
  await badge.filter({ hasText: '1' }).waitFor(WAIT);
  assert.equal(await widget(page, '.launch').getAttribute('aria-label'), 'Open chat, 1 new');
  await widget(page, '.launch').click();
  assert.ok(await badge.isHidden(), 'read once open');
  await widget(page, '.msg.agent').filter({ hasText: 'Uma here' }).waitFor(WAIT);

  await w.bot.api('POST', `/agent/conversations/${id}/close`, token);
  const closed = widget(page, '.sys').filter({ hasText: 'closed' });
  await closed.waitFor(WAIT);
  const comment = page.getByRole('textbox', { name: 'Anything to add? (optional)' });
  await comment.waitFor(WAIT);
  // The closing line is inside the log's visible part, above the rating.
  const logBox = await widget(page, '.log').boundingBox();
  const lineBox = await closed.boundingBox();
  assert.ok(lineBox.y >= logBox.y && lineBox.y + lineBox.height <= logBox.y + logBox.height + 1,
    `closing line ${JSON.stringify(lineBox)} in log ${JSON.stringify(logBox)}`);
  assert.deepEqual(await axe(page, WIDGET), []);
  await comment.fill('Quick and kind.');
  await page.getByRole('button', { name: '4 of 5' }).click();
  await widget(page, '.sys').filter({ hasText: 'Thank you' }).waitFor(WAIT);
  const events = (await w.bot.api('GET', `/agent/conversations/${id}`, token)).events;
  const rating = events.find((r) => r.event.type === 'rating');
  assert.equal(rating.event.score, 4);
  assert.equal(rating.event.comment, 'Quick and kind.');
  await ctx.close();
});

test('on a phone the open panel fills the screen', async () => {
  for (const viewport of [{ width: 360, height: 640 }, { width: 390, height: 844 }]) {
    const ctx = await w.browser.newContext({ viewport, isMobile: true, hasTouch: true });
    const page = await ctx.newPage();
    await page.goto(w.hosts.origin + '/plain');
    await widget(page, '.launch').tap();
    const box = await widget(page, '.panel').boundingBox();
    assert.deepEqual(
      [box.x, box.y, box.width, box.height].map(Math.round),
      [0, 0, viewport.width, viewport.height],
      JSON.stringify(box)
    );
    const log = await widget(page, '.log').boundingBox();
    assert.ok(log.height > viewport.height / 2, `message area ${log.height} px`);
    // The panel's own close button is reachable and closes it.
    await widget(page, '.x').tap();
    assert.ok(await widget(page, '.panel').isHidden());
    assert.ok(await widget(page, '.launch').isVisible());
    await ctx.close();
  }
});
