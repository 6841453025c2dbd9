// Issue 16: with `[texts] language = "de"` the widget speaks German, from
// the strings the server fills into /widget.js, and its German quick
// replies are understood. Run: `cargo build && npm test` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { world } from './harness.mjs';

const WAIT = { timeout: 15000 };

let w;
// A mail server is configured (nothing listens there) so that the queue
// notice offers to leave an email: without one it must not (issue 18).
before(async () => {
  w = await world(['[texts]', 'language = "de"', '[email]', 'host = "127.0.0.1"', 'port = 9', 'tls = "none"',
    'from = "shop@example.com"', 'public_url = "http://127.0.0.1/"']);
});
after(async () => { await w?.close(); });

test('a visitor talks to the widget in German, to a person and to the rating', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.hosts.origin + '/plain');
  await page.getByRole('button', { name: 'Chat öffnen' }).click();
  const box = page.locator('frontdesk-widget textarea');
  await box.waitFor(WAIT);
  assert.equal(await box.getAttribute('placeholder'), 'Ihre Nachricht…');
  assert.equal(await page.locator('frontdesk-widget .root').getAttribute('lang'), 'de');
  await page.locator('frontdesk-widget .sys').filter({ hasText: 'Hallo! Fragen Sie mich' }).waitFor(WAIT);
  await page.getByRole('button', { name: 'Mit einem Menschen sprechen' }).waitFor(WAIT);

  for (const text of ['zzkx qvvj', 'qqxz wwpk']) {
    await box.fill(text);
    await page.keyboard.press('Enter');
  }
  await page.locator('frontdesk-widget .msg.bot').filter({ hasText: 'Soll ich Sie mit einer Person' }).last().waitFor(WAIT);
  await page.getByRole('button', { name: 'Ja, bitte' }).click();
  await page.locator('frontdesk-widget .status').filter({ hasText: 'Sie sind Nummer 1 in der Warteschlange.' }).waitFor(WAIT);
  await page.locator('frontdesk-widget .msg.bot').filter({ hasText: 'Gerade ist niemand aus unserem Team erreichbar.' }).waitFor(WAIT);
  await page.getByRole('button', { name: 'E-Mail-Adresse hinterlassen' }).waitFor(WAIT);

  const token = await w.bot.agent('alex');
  const [c] = (await w.bot.api('GET', '/agent/queue', token)).waiting;
  await w.bot.api('POST', `/agent/conversations/${c.conversation}/claim`, token);
  await page.locator('frontdesk-widget .sys').filter({ hasText: 'alex ist dem Gespräch beigetreten' }).waitFor(WAIT);
  await w.bot.api('POST', `/agent/conversations/${c.conversation}/close`, token);
  await page.locator('frontdesk-widget .sys').filter({ hasText: 'Das Gespräch wurde beendet.' }).waitFor(WAIT);
  await page.locator('frontdesk-widget .extra').filter({ hasText: 'Wie zufrieden waren Sie?' }).waitFor(WAIT);
  await page.getByRole('button', { name: '5 von 5' }).click();
  await page.locator('frontdesk-widget .sys').filter({ hasText: 'Danke für Ihre Bewertung!' }).waitFor(WAIT);
  assert.deepEqual(errors, []);
  await ctx.close();
});
