// Issue 18, item 6: attachments in Debian's Chromium against the real
// server. The damaged-item case: a visitor says their vase arrived broken,
// attaches a photo from the widget, asks for a person; the agent who claims
// the chat sees the photo, and sends a PDF back that the visitor sees as a
// link. Run: `cargo build && node --test --test-concurrency=1
// attach.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WAIT = { timeout: 15000 };
// A real 1×1 PNG: it must decode for the thumbnail to have a size.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

let w;
before(async () => { w = await world(); });
after(async () => { await w?.close(); });

const widget = (page, css) => page.locator('frontdesk-widget ' + css);


/** Whether an <img> has decoded (a broken one has no natural width). */
const decoded = (loc) => loc.evaluate((img) => img.complete && img.naturalWidth > 0);

test('a damaged-item photo sent from the widget shows in the console; a PDF comes back as a link', async () => {
  const vctx = await w.browser.newContext();
  const v = await vctx.newPage();
  const errors = [];
  v.on('pageerror', (e) => errors.push(String(e)));
  await v.goto(w.hosts.origin + '/plain');
  await widget(v, '.launch').click();
  await widget(v, 'textarea').fill('My vase arrived broken, the box was crushed');
  await v.keyboard.press('Enter');
  await widget(v, '.msg.bot').first().waitFor(WAIT);
  // The attach control is a labelled file input, reachable by keyboard.
  const file = widget(v, 'input[type=file]');
  assert.equal(await file.getAttribute('aria-label'), 'Attach a photo or PDF');
  assert.match(await file.getAttribute('accept'), /image\/png/);
  await file.setInputFiles({ name: 'broken vase.png', mimeType: 'image/png', buffer: PNG });
  const thumb = widget(v, '.msg.att.me img');
  await thumb.waitFor(WAIT);
  await v.waitForFunction(() => {
    const i = document.querySelector('frontdesk-widget').shadowRoot.querySelector('.msg.att img');
    return i && i.complete && i.naturalWidth > 0;
  }, null, WAIT);
  assert.equal(await thumb.getAttribute('alt'), 'broken vase.png');
  assert.ok(await decoded(thumb), 'the visitor sees their photo');
  assert.deepEqual(await axe(v, [['frontdesk-widget', '.root']]), []);

  // A file that is not an image or PDF is refused, and the visitor told.
  await file.setInputFiles({ name: 'page.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script>') });
  await widget(v, '.status.err').filter({ hasText: 'Only photos' }).waitFor(WAIT);
  assert.equal(await widget(v, '.msg.att').count(), 1);

  // Handed to a person: the agent claims it and sees the photo.
  await widget(v, '.person').click();
  const token = await w.bot.agent('sam');
  const actx = await w.browser.newContext();
  const a = await actx.newPage();
  a.on('pageerror', (e) => errors.push(String(e)));
  await a.goto(w.bot.origin + '/agent');
  await a.fill('#token', token);
  await a.click('#login-form button[type=submit]');
  await a.locator('#app').waitFor(WAIT);
  await a.locator('#queue li').first().getByRole('button', { name: 'Claim' }).click();
  await a.locator('#events .ev.visitor').filter({ hasText: 'arrived broken' }).waitFor(WAIT);
  const photo = a.locator('#events .ev.attach.visitor img.thumb');
  await photo.waitFor(WAIT);
  await a.waitForFunction(() => {
    const i = document.querySelector('#events img.thumb');
    return i && i.complete && i.naturalWidth > 0;
  }, null, WAIT);
  assert.ok(await decoded(photo), 'the agent sees the photo');
  assert.match(await photo.getAttribute('alt'), /broken vase\.png/);
  assert.match(await photo.getAttribute('src'), /^data:image\/png;base64,/, 'no token in a URL');
  assert.deepEqual(await axe(a), []);

  // The agent sends a return label; the visitor gets a link to it.
  await a.locator('#attach-file').setInputFiles({ name: 'return label.pdf', mimeType: 'application/pdf', buffer: PDF });
  await a.locator('#events .ev.attach.agent').filter({ hasText: 'return label.pdf' }).waitFor(WAIT);
  const link = widget(v, '.msg.att.agent a[href]').filter({ hasText: 'return label.pdf' });
  await link.waitFor(WAIT);
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  const href = await link.getAttribute('href');
  assert.match(href, /[?]exp=\d+&sig=[0-9a-f]+$/, 'a signed link, no token in it');
  assert.doesNotMatch(href, /token=/);
  const res = await fetch(href);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/pdf');
  assert.match(res.headers.get('content-disposition'), /^attachment;/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual(errors, []);
  await vctx.close();
  await actx.close();
});
