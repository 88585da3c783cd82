// End-to-end test of the household's web page in a real browser: two households' real `kith serve`
// processes on loopback, Debian's chromium (headless) driven by puppeteer-core.
//
//   node tests/web/browser-test.mjs KITH_BINARY SCREENSHOT_DIR
//
// Steps: the owner posts an update with a photo on her page; it appears on the friend's page
// without a reload; the friend comments and sends a heart, which appear on the owner's page; the
// owner makes an invite (code and QR) and sees her people and status. Then the guards: no or a
// wrong session is refused, a cross-site form POST from another origin is refused (and posts
// nothing), a foreign Host is refused. Screenshots of the main screens go to SCREENSHOT_DIR.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const [kith, shotDir] = process.argv.slice(2);
if (!kith || !shotDir) {
  console.error('usage: node browser-test.mjs KITH_BINARY SCREENSHOT_DIR');
  process.exit(2);
}
let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch {
  console.error('browser-test: puppeteer-core is not installed: run scripts/install-deps.sh (npm ci in tests/web)');
  process.exit(1);
}
const CHROMIUM = process.env.KITH_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  console.error(`browser-test: no browser at ${CHROMIUM}: run scripts/install-deps.sh (Debian's chromium)`);
  process.exit(1);
}
const STEP_TIMEOUT_MS = 30000;
fs.mkdirSync(shotDir, { recursive: true });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kith-web-'));
const children = [];

function step(text) {
  console.log(`browser-test: ${text}`);
}

function run(home, ...args) {
  return execFileSync(kith, ['--home', home, ...args], { encoding: 'utf8' });
}

function runJson(home, ...args) {
  return JSON.parse(run(home, '--json', ...args));
}

// `kith serve` with its peers' port and its page on ports the OS chose; resolves with the page's
// address once it is served (HOME/web-address).
function serve(home) {
  const child = spawn(kith, ['--home', home, 'serve', '--listen', '127.0.0.1:0', '--web', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  child.log = () => log;
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    const timer = setInterval(() => {
      const m = log.match(/the family's page is at http:\/\/([^/]+)\//);
      const listen = log.match(/listening on (\S+)/);
      if (m && listen) {
        clearInterval(timer);
        resolve({ child, web: m[1], listen: listen[1] });
      } else if (child.exitCode !== null || Date.now() > deadline) {
        clearInterval(timer);
        reject(new Error(`kith serve of ${home} did not start:\n${log}`));
      }
    }, 50);
  });
}

function signInLink(home) {
  return runJson(home, 'web', '--no-open').url;
}

async function stopAll() {
  for (const c of children) {
    if (c.exitCode === null) c.kill('SIGTERM');
  }
  await Promise.all(
    children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.on('exit', r)))),
  );
}

// A plain HTTP request from this process (not the browser), for the guard checks.
function request(address, { method = 'GET', pathName = '/', headers = {}, body } = {}) {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: pathName, headers }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// An 8x8 PNG (one colour), written with zlib from node: no image file in the repository.
async function writePng(file) {
  const zlib = await import('node:zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const w = 64;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(w, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = [];
  for (let y = 0; y < w; y++) {
    const row = [0];
    for (let x = 0; x < w; x++) row.push(230, 120 + ((x * 2) % 100), 90 + y);
    rows.push(Buffer.from(row));
  }
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  fs.writeFileSync(file, png);
}

async function updateWith(page, text) {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-test="update"]')].find((u) => u.innerText.includes(t)) || null,
    { timeout: STEP_TIMEOUT_MS },
    text,
  );
}

let browser;
let failed = false;
try {
  // Two households: Ana (the owner) and Ben (a friend), joined by an invite on the command line.
  const ana = path.join(root, 'ana');
  const ben = path.join(root, 'ben');
  run(ana, 'init', '--name', 'Ana', '--no-passphrase');
  run(ben, 'init', '--name', 'Ben', '--no-passphrase');
  run(ana, 'journal', 'create', "Ana's recovery");
  run(ana, 'post', 'Surgery went well. Thank you all for the soup.');
  const anaNode = await serve(ana);
  step(`Ana's node listens on ${anaNode.listen}, her page on ${anaNode.web}`);
  const invite = runJson(ana, 'invite', '--label', 'Ben', '--address', anaNode.listen);
  run(ben, 'accept', invite.code);
  const benNode = await serve(ben);
  step(`Ben joined; his page is on ${benNode.web}`);

  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const problems = [];
  async function openPage(link, who) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 1100, height: 1400 });
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`${who}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`${who}: ${e.message}`));
    await page.goto(link);
    await page.waitForFunction(() => location.pathname === '/', { timeout: STEP_TIMEOUT_MS });
    await page.waitForFunction(
      () => document.querySelector('[data-test="journal-title"]')?.innerText.includes('recovery'),
      { timeout: STEP_TIMEOUT_MS },
    );
    return page;
  }
  const anaPage = await openPage(signInLink(ana), 'Ana');
  const benPage = await openPage(signInLink(ben), 'Ben');
  step('both pages signed in with one-time links');

  // Ana posts an update with a photo.
  const photo = path.join(root, 'garden.png');
  await writePng(photo);
  const text = 'Home from the hospital today. Here is the garden!';
  await anaPage.type('[data-test="post-text"]', text);
  const input = await anaPage.$('[data-test="post-photos"]');
  await input.uploadFile(photo);
  await anaPage.click('[data-test="post-submit"]');
  await updateWith(anaPage, text);
  step('Ana posted an update with a photo');

  // It reaches Ben's page live: no reload.
  await updateWith(benPage, text);
  const photoLoaded = await benPage.waitForFunction(
    (t) => {
      const u = [...document.querySelectorAll('[data-test="update"]')].find((x) => x.innerText.includes(t));
      const img = u && u.querySelector('[data-test="photo"]');
      return img && img.complete && img.naturalWidth === 64 ? img.alt : null;
    },
    { timeout: STEP_TIMEOUT_MS },
    text,
  );
  assert.equal(await photoLoaded.jsonValue(), 'garden.png');
  const author = await benPage.evaluate(
    (t) =>
      [...document.querySelectorAll('[data-test="update"]')]
        .find((x) => x.innerText.includes(t))
        .querySelector('[data-test="author"]').innerText,
    text,
  );
  assert.match(author, /Ana/);
  step("the update and its photo appeared on Ben's page without a reload, signed by Ana");

  // Ben comments and sends a heart.
  const update = await (await updateWith(benPage, text)).asElement();
  const comment = 'So glad you are home! I will bring dinner on Thursday.';
  await (await update.$('[data-test="comment-text-input"]')).type(comment);
  await (await update.$('[data-test="comment-submit"]')).click();
  await (await update.$('[data-test="heart"]')).click();
  await benPage.waitForFunction(
    (t, c) => {
      const u = [...document.querySelectorAll('[data-test="update"]')].find((x) => x.innerText.includes(t));
      return u && u.innerText.includes(c) && u.querySelector('[data-test="heart-count"]').innerText.trim() === '1';
    },
    { timeout: STEP_TIMEOUT_MS },
    text,
    comment,
  );
  step('Ben commented and sent a heart');

  // Both appear on Ana's page, live.
  await anaPage.waitForFunction(
    (t, c) => {
      const u = [...document.querySelectorAll('[data-test="update"]')].find((x) => x.innerText.includes(t));
      if (!u) return false;
      const com = [...u.querySelectorAll('[data-test="comment"]')].find((x) => x.innerText.includes(c));
      const heart = u.querySelector('[data-test="heart"]');
      return (
        com &&
        com.querySelector('[data-test="author"]').innerText.includes('Ben') &&
        u.querySelector('[data-test="heart-count"]').innerText.trim() === '1' &&
        heart.innerText.includes('Ben')
      );
    },
    { timeout: STEP_TIMEOUT_MS },
    text,
    comment,
  );
  step("Ben's comment and heart appeared on Ana's page, with his name");
  await anaPage.screenshot({ path: path.join(shotDir, 'owner-news.png'), fullPage: true });
  await benPage.screenshot({ path: path.join(shotDir, 'friend-news.png'), fullPage: true });

  // Ana asks for help; Ben offers on his page; Ana sees that he did.
  const ask = 'A meal for Thursday evening';
  await anaPage.click('[data-test="tab-help"]');
  await anaPage.waitForSelector('[data-test="ask-form"]:not([hidden])', { timeout: STEP_TIMEOUT_MS });
  await anaPage.type('[data-test="ask-text"]', ask);
  await anaPage.$eval('[data-test="ask-slots"]', (e) => (e.value = '2'));
  await anaPage.click('[data-test="ask-submit"]');
  const requestWith = (t) =>
    [...document.querySelectorAll('[data-test="request"]')].find((r) => r.innerText.includes(t)) || null;
  await benPage.click('[data-test="tab-help"]');
  const benRequest = await (await benPage.waitForFunction(requestWith, { timeout: STEP_TIMEOUT_MS }, ask)).asElement();
  assert.equal(await benRequest.$eval('[data-test="done"]', (b) => b.hidden), true, 'a friend may not close a request');
  await (await benRequest.$('[data-test="claim"]')).click();
  await anaPage.waitForFunction(
    (t) => {
      const r = [...document.querySelectorAll('[data-test="request"]')].find((x) => x.innerText.includes(t));
      return r && /1 of 2 people has offered: Ben/.test(r.innerText);
    },
    { timeout: STEP_TIMEOUT_MS },
    ask,
  );
  step('Ana asked for help; Ben offered on his page and Ana sees it');
  await anaPage.screenshot({ path: path.join(shotDir, 'owner-help.png'), fullPage: true });
  await benPage.click('[data-test="tab-news"]');

  // A phone-sized window: nothing wider than the screen.
  await benPage.setViewport({ width: 390, height: 844 });
  const overflow = await benPage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone's window`);
  await benPage.screenshot({ path: path.join(shotDir, 'friend-phone.png') });

  // Ana's people, an invite with its QR code, and the node's status.
  await anaPage.click('[data-test="tab-people"]');
  await anaPage.waitForFunction(() => document.querySelectorAll('[data-test="member"]').length >= 2, {
    timeout: STEP_TIMEOUT_MS,
  });
  const members = await anaPage.$$eval('[data-test="member"]', (els) => els.map((e) => e.innerText));
  assert.ok(members.some((m) => m.includes('Ben')), `Ben is not among the members: ${members}`);
  await anaPage.type('[data-test="invite-label"]', 'Grandma');
  await anaPage.click('[data-test="invite-submit"]');
  await anaPage.waitForFunction(
    () =>
      /^[0-9a-z]{4}(-[0-9a-z]{4}){4}$|^kith-/.test(document.querySelector('[data-test="invite-code"]').innerText.trim()) &&
      document.querySelector('[data-test="invite-qr"] img, [data-test="invite-qr"] svg'),
    { timeout: STEP_TIMEOUT_MS },
  );
  step('Ana made an invite for Grandma: a code and its QR');
  await anaPage.screenshot({ path: path.join(shotDir, 'owner-people-invite.png'), fullPage: true });
  const grandmaCode = (await anaPage.$eval('[data-test="invite-code"]', (e) => e.innerText)).trim();

  // Grandma's node runs already; she joins on her own page with the code, and her node takes the
  // journal on at once: Ana's news arrives and Grandma's heart reaches Ana.
  const grandma = path.join(root, 'grandma');
  run(grandma, 'init', '--name', 'Grandma', '--no-passphrase');
  const grandmaNode = await serve(grandma);
  const grandmaContext = await browser.createBrowserContext();
  const grandmaPage = await grandmaContext.newPage();
  await grandmaPage.setViewport({ width: 1100, height: 1400 });
  grandmaPage.on('pageerror', (e) => problems.push(`Grandma: ${e.message}`));
  await grandmaPage.goto(signInLink(grandma));
  await grandmaPage.waitForFunction(() => location.pathname === '/', { timeout: STEP_TIMEOUT_MS });
  await grandmaPage.waitForSelector('[data-test="tab-join"]', { visible: true, timeout: STEP_TIMEOUT_MS });
  await grandmaPage.click('[data-test="tab-join"]');
  await grandmaPage.type('[data-test="accept-code"]', grandmaCode);
  await grandmaPage.click('[data-test="accept-submit"]');
  await grandmaPage.waitForSelector('[data-test="accept-result"]:not([hidden])', { timeout: 2 * STEP_TIMEOUT_MS });
  const joined = await grandmaPage.$eval('[data-test="accept-result"]', (e) => e.innerText);
  assert.match(joined, /You joined/);
  await grandmaPage.screenshot({ path: path.join(shotDir, 'friend-joined.png'), fullPage: true });
  await grandmaPage.click('[data-test="tab-news"]');
  await updateWith(grandmaPage, text);
  await (await (await updateWith(grandmaPage, text)).asElement().$('[data-test="heart"]')).click();
  await anaPage.waitForFunction(
    (t) => {
      const u = [...document.querySelectorAll('[data-test="update"]')].find((x) => x.innerText.includes(t));
      return u && u.querySelector('[data-test="heart-count"]').innerText.trim() === '2';
    },
    { timeout: STEP_TIMEOUT_MS },
    text,
  );
  step(`Grandma joined on her page (node ${grandmaNode.web}); Ana's news reached her and her heart reached Ana`);
  await anaPage.click('[data-test="tab-status"]');
  await anaPage.waitForFunction(() => document.querySelectorAll('[data-test="peer"]').length >= 1, {
    timeout: STEP_TIMEOUT_MS,
  });
  await anaPage.screenshot({ path: path.join(shotDir, 'owner-status.png'), fullPage: true });
  step("Ana's status shows Ben's node");

  // The guards. No session, and a made-up one: refused.
  const none = await request(anaNode.web, { pathName: '/api/session' });
  assert.equal(none.status, 401);
  const forged = await request(anaNode.web, {
    pathName: '/api/session',
    headers: { Cookie: 'kith_session=' + 'ab'.repeat(32) },
  });
  assert.equal(forged.status, 401);
  // A used sign-in link: refused.
  const used = await anaPage.browserContext().newPage();
  const link = signInLink(ana);
  await used.goto(link);
  await used.waitForFunction(() => location.pathname === '/', { timeout: STEP_TIMEOUT_MS });
  const again = await browser.createBrowserContext();
  const againPage = await again.newPage();
  await againPage.goto(link);
  await againPage.waitForSelector('[data-test="login-message"]', { timeout: STEP_TIMEOUT_MS });
  await againPage.waitForFunction(
    () => /used already|too old/.test(document.querySelector('[data-test="login-message"]').innerText),
    { timeout: STEP_TIMEOUT_MS },
  );
  await againPage.screenshot({ path: path.join(shotDir, 'login-refused.png') });
  // The signed-out page says what to do.
  const outPage = await again.newPage();
  await outPage.goto(`http://${anaNode.web}/`);
  await outPage.waitForSelector('[data-test="signed-out"]:not([hidden])', { timeout: STEP_TIMEOUT_MS });
  step('no session, a forged session and a used link are refused');

  // A foreign Host (DNS rebinding): refused.
  const rebound = await request(anaNode.web, { pathName: '/', headers: { Host: 'attacker.example:80' } });
  assert.equal(rebound.status, 421);

  // A cross-site form POST from another origin, in the same browser as Ana's session: refused,
  // and nothing is posted.
  const evilText = 'posted by a stranger';
  const evil = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><form id="f" method="POST" enctype="text/plain"
      action="http://${anaNode.web}/api/post"><input name='{"text":"${evilText}","x":"' value='"}'></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const evilPage = await anaPage.browserContext().newPage();
  const answer = new Promise((resolve) =>
    evilPage.on('response', (r) => {
      if (r.url().includes('/api/post')) resolve(r.status());
    }),
  );
  await evilPage.goto(`http://127.0.0.1:${evil.address().port}/`);
  assert.equal(await answer, 403, 'the cross-site POST was not refused');
  evil.close();
  await anaPage.bringToFront();
  await anaPage.click('[data-test="tab-news"]');
  await new Promise((r) => setTimeout(r, 500));
  const shown = await anaPage.evaluate(() => document.body.innerText);
  assert.ok(!shown.includes(evilText), 'the cross-site POST was posted');
  step('a foreign Host and a cross-site POST are refused');

  assert.deepEqual(problems, [], 'the pages logged errors');
  step('passed');
} catch (e) {
  failed = true;
  console.error('browser-test: FAILED:', e && e.stack ? e.stack : e);
  for (const c of children) console.error(`--- a node's log:\n${c.log ? c.log() : ''}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopAll();
  // Every node must stop cleanly: exit 0, no sanitizer report (the ASan+UBSan build runs this too).
  for (const c of children) {
    const log = c.log ? c.log() : '';
    if (c.exitCode !== 0 || /AddressSanitizer|LeakSanitizer|runtime error:/.test(log)) {
      failed = true;
      console.error(`browser-test: FAILED: a node did not stop cleanly (exit ${c.exitCode}):\n${log}`);
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
