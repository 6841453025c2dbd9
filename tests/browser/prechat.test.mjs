// Issue 18, item 7: the optional pre-chat form (`[widget] prechat = true`),
// in Debian's Chromium against the real server. Run: `cargo build && node
// --test --test-concurrency=1 prechat.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bot, browser, freePort, hostPages, world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WIDGET = [['frontdesk-widget', '.root']];
const WAIT = { timeout: 15000 };

let w;
before(async () => { w = await world(['[widget]', 'prechat = true']); });
after(async () => { await w?.close(); });

const widget = (page, css) => page.locator('frontdesk-widget ' + css);
/** The element focused inside the widget's shadow root, as `tag#id`. */
const focused = (page) => page.evaluate(() => {
  const a = document.querySelector('frontdesk-widget').shadowRoot.activeElement;
  return a ? a.tagName.toLowerCase() + (a.id ? '#' + a.id : '') : 'outside';
});
const stored = (page) => page.evaluate(() => {
  const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
  return JSON.parse(localStorage.getItem(k));
});
/** The stored state once the conversation exists (the message bubble shows
 * before the server has made it). */
const started = async (page) => {
  await page.waitForFunction(() => {
    const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
    return k && (JSON.parse(localStorage.getItem(k)) || {}).conv;
  }, null, WAIT);
  return stored(page);
};


test('the pre-chat form comes first, works by keyboard alone, and its name and email reach the agents', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.hosts.origin + '/plain');
  await widget(page, '.launch').focus();
  await page.keyboard.press('Enter');
  // The form, not the reply box: focus on its first field.
  assert.equal(await focused(page), 'input#fd-pre-name');
  assert.equal(await widget(page, '.pre').isVisible(), true);
  assert.equal(await widget(page, 'textarea').isVisible(), false);
  assert.equal(await widget(page, '.person').isVisible(), false);
  // Every field has a visible label.
  assert.equal(await widget(page, 'label[for="fd-pre-name"]').innerText(), 'Your name (optional)');
  assert.equal(await widget(page, 'label[for="fd-pre-email"]').innerText(), 'Your email');
  assert.deepEqual(await axe(page, WIDGET), []);

  await page.keyboard.type('Ada Lovelace');
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'input#fd-pre-email');
  await page.keyboard.type('not-an-email');
  await page.keyboard.press('Enter');
  // Refused, said so, focus kept on the field to fix.
  const err = widget(page, '#fd-pre-err');
  await err.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await err.getAttribute('role'), 'alert');
  assert.equal(await widget(page, '#fd-pre-email').getAttribute('aria-invalid'), 'true');
  assert.equal(await focused(page), 'input#fd-pre-email');
  assert.deepEqual(await axe(page, WIDGET), []);
  await page.keyboard.press('Control+A');
  await page.keyboard.type('ada@example.com');
  await page.keyboard.press('Enter');
  // The form goes; the reply box has the keyboard.
  await widget(page, '.pre').waitFor({ state: 'hidden', ...WAIT });
  assert.equal(await focused(page), 'textarea#fd-input');
  assert.equal(await widget(page, '.person').isVisible(), true);
  await page.keyboard.type('Where is my parcel?');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);

  // The agents see who it is.
  const { conv } = await started(page);
  const t = await w.bot.api('GET', `/agent/conversations/${conv.id}`, w.bot.admin);
  const text = JSON.stringify(t);
  assert.ok(text.includes('"name":"Ada Lovelace"'), text.slice(0, 400));
  assert.ok(text.includes('"email":"ada@example.com"'), text.slice(0, 400));
  // A reload with the conversation under way: no form again.
  await page.reload();
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);
  assert.equal(await widget(page, '.pre').isVisible(), false);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a page that says who the visitor is skips the form; without email no transcript is offered', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.hosts.origin + '/identified');
  await widget(page, '.launch').click();
  assert.equal(await focused(page), 'textarea#fd-input');
  assert.equal(await widget(page, '.pre').isVisible(), false);
  await page.keyboard.type('Where is my parcel?');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);
  const { conv } = await started(page);
  const sam = await w.bot.agent('sam');
  await w.bot.api('POST', `/agent/conversations/${conv.id}/claim`, sam);
  await w.bot.api('POST', `/agent/conversations/${conv.id}/close`, sam);
  await widget(page, '.rate-c').waitFor(WAIT);
  // This server has no SMTP host: the closed chat offers no transcript.
  assert.equal(await widget(page, '.tx').count(), 0);
  await ctx.close();
});

// With a mail server (aiosmtpd on loopback, tests/smtp/server.py): the
// transcript button at the close, and the email's link reopening the
// conversation in a browser that never saw it. Skipped without aiosmtpd,
// except under CI or FRONTDESK_REQUIRE_SMTP (as tests/it/server/email.rs).
test('the closed chat emails its transcript, and the email link reopens the conversation elsewhere', async (t) => {
  const has = spawnSync('python3', ['-c', 'import aiosmtpd']).status === 0;
  if (!has) {
    assert.ok(!process.env.CI && !process.env.FRONTDESK_REQUIRE_SMTP, 'python3 with aiosmtpd is needed (pip install aiosmtpd)');
    t.skip('python3 with aiosmtpd is not installed');
    return;
  }
  const smtpPort = await freePort();
  const mailDir = mkdtempSync(join(tmpdir(), 'frontdesk-mail-'));
  const smtp = spawn('python3', [join(import.meta.dirname, '../smtp/server.py'), String(smtpPort), mailDir],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((ok) => smtp.stdout.once('data', ok));
  const botPort = await freePort();
  const hostPort = await freePort();
  const hostOrigin = `http://127.0.0.1:${hostPort}`;
  const bot = new Bot(botPort, hostOrigin, ['[email]', 'host = "127.0.0.1"', `port = ${smtpPort}`, 'tls = "none"',
    'from = "Shop <help@shop.example>"', `public_url = "${hostOrigin}/plain"`, 'batch_secs = 1']);
  await bot.start();
  const hosts = await hostPages(bot.origin, hostPort);
  const b = await browser();
  const mails = () => readdirSync(mailDir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => JSON.parse(readFileSync(join(mailDir, f), 'utf8')));
  const waitMails = async (n) => {
    const until = Date.now() + 15000;
    while (mails().length < n) {
      assert.ok(Date.now() < until, `${n} email(s) in time`);
      await new Promise((ok) => setTimeout(ok, 50));
    }
    return mails();
  };
  try {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await page.goto(hostOrigin + '/identified');
    await widget(page, '.launch').click();
    await page.keyboard.type('My parcel arrived broken');
    await page.keyboard.press('Enter');
    await widget(page, '.msg.me').filter({ hasText: 'My parcel arrived broken' }).waitFor(WAIT);
    const { conv } = await started(page);
    const sam = await bot.agent('sam');
    await bot.api('POST', `/agent/conversations/${conv.id}/claim`, sam);
    await bot.api('POST', `/agent/conversations/${conv.id}/notes`, sam, { text: 'INTERNAL: check the courier' });
    await bot.api('POST', `/agent/conversations/${conv.id}/messages`, sam, { text: 'Sorry! A new one is on its way.' });
    await widget(page, '.msg.agent').filter({ hasText: 'A new one is on its way.' }).waitFor(WAIT);
    await bot.api('POST', `/agent/conversations/${conv.id}/close`, sam);
    // The page identified the visitor: the address is filled in.
    const tx = widget(page, '.tx');
    await tx.waitFor(WAIT);
    assert.equal(await tx.locator('input').inputValue(), 'ada@example.com');
    // It goes only to the address left: shown, not editable.
    assert.equal(await tx.locator('input').evaluate((i) => i.readOnly), true);
    assert.deepEqual(await axe(page, WIDGET), []);
    await tx.getByRole('button', { name: 'Email me this conversation' }).click();
    await widget(page, '.sys').filter({ hasText: 'will be sent to ada@example.com' }).waitFor(WAIT);
    const [mail] = await waitMails(1);
    assert.deepEqual(mail.rcpt_tos, ['ada@example.com']);
    assert.ok(mail.body.includes('My parcel arrived broken'), mail.body);
    assert.ok(mail.body.includes('A new one is on its way.'), mail.body);
    assert.ok(!mail.body.includes('INTERNAL'), mail.body);
    await ctx.close();

    // Another browser, no stored conversation: the link opens it.
    const link = mail.body.match(/http:\/\/\S+#frontdesk=\S+/)[0];
    const other = await b.newContext();
    const p2 = await other.newPage();
    await p2.goto(link);
    await widget(p2, '.msg.agent').filter({ hasText: 'A new one is on its way.' }).waitFor(WAIT);
    assert.equal(await widget(p2, '.panel').isVisible(), true);
    assert.equal(new URL(p2.url()).hash, '', 'the key leaves the address bar');
    assert.equal((await stored(p2)).conv.id, conv.id);
    await other.close();
    // The link works once: a third browser is told so, in the open panel,
    // and can start a chat of its own.
    const third = await b.newContext();
    const p3 = await third.newPage();
    await p3.goto(link);
    await widget(p3, '.sys').filter({ hasText: 'has been used or has expired' }).waitFor(WAIT);
    assert.equal(await widget(p3, '.panel').isVisible(), true);
    assert.equal(await widget(p3, '.msg.agent').count(), 0);
    await third.close();
  } finally {
    await b.close();
    await hosts.close();
    await bot.cleanup();
    smtp.kill();
    rmSync(mailDir, { recursive: true, force: true });
  }
});
