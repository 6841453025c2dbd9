// One accessibility sweep over every page the product serves, each in the
// states a person meets (login, working, a dialog open), with axe-core in
// Debian's Chromium against the real server. The feature tests check their
// own parts too; this one makes sure no page or state is left out. Run:
// `cargo build && node --test --test-concurrency=1 axe.test.mjs` here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { axe, world } from './harness.mjs';

const WAIT = { timeout: 15000 };
const WIDGET = [['frontdesk-widget', '.root']];

let w;
before(async () => {
  w = await world(['[widget]', 'prechat = true'], { copyIntents: true });
  writeFileSync(join(w.bot.dir, 'canned.toml'),
    '[[reply]]\ntitle = "Ask for a photo"\ntext = "Hi {name}, could you send a photo of the damage?"\n');
});
after(async () => { await w?.close(); });

test('axe-core: no serious or critical violation on any page, in each state a person meets', async () => {
  const found = [];
  const errors = [];
  const sweep = async (page, where, include) => {
    for (const v of await axe(page, include)) found.push(`${where}: ${v}`);
  };
  const open = async (path) => {
    const ctx = await w.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`${path}: ${e}`));
    await page.goto(w.bot.origin + path);
    return page;
  };
  const login = async (page, token) => {
    await page.fill('#token', token);
    await page.click('#login-form button[type=submit]');
  };

  // The demo page, with the widget closed, its pre-chat form, a
  // conversation with the bot, waiting for a person, and the rating.
  const demo = await open('/');
  await demo.locator('frontdesk-widget .launch').waitFor(WAIT);
  await sweep(demo, 'demo page, widget closed');
  await demo.locator('frontdesk-widget .launch').click();
  await demo.locator('frontdesk-widget .pre').waitFor(WAIT);
  await sweep(demo, 'demo page, pre-chat form');
  await sweep(demo, 'widget, pre-chat form', WIDGET);
  await demo.fill('frontdesk-widget #fd-pre-name', 'Dana Sweep');
  await demo.fill('frontdesk-widget #fd-pre-email', 'dana@example.com');
  await demo.locator('frontdesk-widget .pre button[type=submit]').click();
  await demo.locator('frontdesk-widget textarea').fill('How much is shipping?');
  await demo.keyboard.press('Enter');
  await demo.locator('frontdesk-widget .msg.bot').filter({ hasText: 'shipping' }).first().waitFor(WAIT);
  await sweep(demo, 'widget, answered by the bot', WIDGET);
  await demo.locator('frontdesk-widget textarea').fill('My vase arrived broken');
  await demo.keyboard.press('Enter');
  await demo.locator('frontdesk-widget .person').click();
  await demo.locator('frontdesk-widget .status').filter({ hasText: 'queue' }).waitFor(WAIT);
  await sweep(demo, 'widget, waiting for a person', WIDGET);

  // The console: login, then a conversation claimed, with the canned
  // replies' list open and the inbox filled.
  const ann = await w.bot.agent('ann');
  const desk = await open('/agent');
  await desk.locator('#login-form').waitFor(WAIT);
  await sweep(desk, 'console login');
  await login(desk, ann);
  await desk.locator('#inbox-list .inbox-title').first().waitFor(WAIT);
  await sweep(desk, 'console, inbox');
  await desk.locator('#queue li').first().getByRole('button', { name: 'Claim' }).click();
  await desk.locator('#events .ev.visitor').filter({ hasText: 'arrived broken' }).waitFor(WAIT);
  await desk.fill('#reply', 'Sorry to hear that.');
  await desk.keyboard.press('Enter');
  await demo.locator('frontdesk-widget .msg.agent').filter({ hasText: 'Sorry' }).waitFor(WAIT);
  await sweep(desk, 'console, a conversation claimed');
  await sweep(demo, 'widget, with an agent', WIDGET);
  await desk.locator('#reply').focus();
  await desk.keyboard.type('/');
  await desk.locator('#canned-list').waitFor(WAIT);
  await sweep(desk, 'console, canned replies open');
  await desk.keyboard.press('Escape');
  await desk.click('#close-btn');
  await demo.getByRole('button', { name: '5 of 5' }).waitFor(WAIT);
  await sweep(demo, 'widget, closed and asking for a rating', WIDGET);
  await sweep(demo, 'demo page, widget open');

  // The admin page: login, then every section, with an intent open in
  // the editor.
  const admin = await open('/admin');
  await admin.locator('#login-form').waitFor(WAIT);
  await sweep(admin, 'admin login');
  await login(admin, w.bot.admin);
  await admin.locator('#app').waitFor(WAIT);
  await admin.waitForFunction(() => document.getElementById('canned-toml').value.includes('Ask for a photo'), null, WAIT);
  await sweep(admin, 'admin');
  await admin.getByRole('button', { name: 'Open', exact: true }).first().click();
  await admin.locator('#e-status').filter({ hasText: 'Opened' }).waitFor(WAIT);
  await sweep(admin, 'admin, an intent in the editor');

  // The reports: login, the report, a drill-down and a transcript.
  const reports = await open('/reports');
  await reports.locator('#login-form').waitFor(WAIT);
  await sweep(reports, 'reports login');
  await login(reports, w.bot.admin);
  await reports.locator('#outcomes .card').first().waitFor(WAIT);
  await sweep(reports, 'reports');
  await reports.locator('#outcomes button.num').first().click();
  await reports.locator('#rows tbody tr').first().waitFor(WAIT);
  await sweep(reports, 'reports, a drill-down');
  await reports.locator('#rows tbody button[data-id]').first().click();
  await reports.locator('#events .ev').first().waitFor(WAIT);
  await sweep(reports, 'reports, a transcript');

  assert.deepEqual(found, []);
  assert.deepEqual(errors, []);
});
