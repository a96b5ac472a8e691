// The report's browser test: loads OUT/report.html in headless Chromium with every host name
// unresolvable, drives it through the DevTools protocol over a pipe (no port, no npm package),
// and checks the page as a reader's browser built it. One "ok - …" / "not ok - …" line per check.
// usage: node tests/report_browser.js CHROMIUM REPORT.html SCREENSHOT.png SECTION-ID...
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [chromium, report, screenshot, ...sections] = process.argv.slice(2);
const pageUrl = 'file://' + path.resolve(report);
let failures = 0;
const check = (name, pass, detail) => {
  console.log(`${pass ? 'ok' : 'not ok'} - browser: ${name}${pass || !detail ? '' : `\n    ${detail}`}`);
  if (!pass) failures++;
};

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'minitx-chromium-'));
const browser = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--remote-debugging-pipe',
  `--user-data-dir=${profile}`, '--host-resolver-rules=MAP * ~NOTFOUND', '--no-first-run', '--no-default-browser-check',
  '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--hide-scrollbars', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
browser.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
// Chromium and its helper processes write the profile until they exit: ask the browser to
// close (it ends its helpers), and remove the profile once it has.
const finish = (code) => {
  const kill = setTimeout(() => browser.kill('SIGKILL'), 10000);
  browser.once('exit', () => {
    clearTimeout(kill);
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (e) {
      console.error(`report_browser: could not remove ${profile}: ${e.message}`);
    }
    process.exit(code);
  });
  if (browser.exitCode !== null || browser.signalCode !== null) browser.emit('exit');
  else browser.stdio[3].write(JSON.stringify({ id: nextId++, method: 'Browser.close' }) + '\0');
};
const timer = setTimeout(() => {
  check('the page loaded within 90 s', false, stderr.split('\n').slice(-5).join('\n    '));
  finish(1);
}, 90000);
browser.on('error', (e) => { check(`${chromium} started`, false, e.message); finish(1); });

// The protocol: JSON messages separated by NUL bytes, ours on fd 3, Chromium's on fd 4.
let nextId = 1, buffer = '';
const pending = new Map(), listeners = [];
browser.stdio[4].on('data', (chunk) => {
  buffer += chunk.toString('utf8');
  let end;
  while ((end = buffer.indexOf('\0')) >= 0) {
    const message = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (message.id && pending.has(message.id)) {
      const { resolve, reject, method } = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(`${method}: ${message.error.message}`));
      else resolve(message.result);
    } else if (message.method) {
      for (const listener of listeners) listener(message);
    }
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject, method });
  browser.stdio[3].write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
});
const once = (method) => new Promise((resolve) => {
  const listener = (m) => { if (m.method === method) { listeners.splice(listeners.indexOf(listener), 1); resolve(m.params); } };
  listeners.push(listener);
});

// Everything the page can tell about itself, computed inside the page after load.
const inspect = () => {
  const box = (e) => e.getBoundingClientRect();
  const svgs = [...document.querySelectorAll('figure svg')];
  const external = [];
  for (const e of document.querySelectorAll('*'))
    for (const a of e.attributes)
      if (/^\s*(https?|ftp|wss?|file|data|javascript):|^\s*\/\//i.test(a.value) || /url\(\s*['"]?(?!#)/i.test(a.value))
        external.push(`<${e.localName} ${a.name}="${a.value.slice(0, 60)}">`);
  for (const sheet of document.styleSheets)
    for (const rule of sheet.cssRules)
      if (/url\(|@import/i.test(rule.cssText)) external.push(`css: ${rule.cssText.slice(0, 60)}`);
  const text = svgs[0] && svgs[0].querySelector('text');
  return {
    sections: [...document.querySelectorAll('main > section')].map((s) => s.id),
    contents: [...document.querySelectorAll('nav a')].map((a) => a.getAttribute('href')),
    figures: document.querySelectorAll('figure').length,
    svgSizes: svgs.map((s) => [Math.round(box(s).width), Math.round(box(s).height), s.querySelectorAll('path').length]),
    svgTitles: svgs.map((s) => (s.getAttribute('role') === 'img' && s.querySelector('title') ? s.querySelector('title').textContent : '')),
    captions: [...document.querySelectorAll('figure')].map((f) => (f.querySelector('figcaption') || {}).textContent || ''),
    images: [...document.images].map((i) => [i.src.slice(0, 60), i.naturalWidth]),
    scripts: document.scripts.length,
    external,
    headers: [...document.querySelectorAll('table')].map((t) => t.querySelectorAll('thead th').length),
    colours: {
      body: getComputedStyle(document.body).color,
      background: getComputedStyle(document.body).backgroundColor,
      svgText: text ? getComputedStyle(text).fill : '',
    },
  };
};
const luminance = (rgb) => {
  const [r, g, b] = (rgb.match(/[\d.]+/g) || [0, 0, 0]).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
};

(async () => {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const page = (method, params) => send(method, params, sessionId);
  const requests = [];
  listeners.push((m) => {
    if (m.sessionId === sessionId && m.method === 'Network.requestWillBeSent') requests.push(m.params.request.url);
  });
  await page('Network.enable');
  await page('Page.enable');
  await page('Emulation.setDeviceMetricsOverride', { width: 1100, height: 1400, deviceScaleFactor: 1, mobile: false });
  const loaded = once('Page.loadEventFired');
  const nav = await page('Page.navigate', { url: pageUrl });
  check('the page opened', !nav.errorText, nav.errorText);
  await loaded;
  const evaluate = async () => {
    const r = await page('Runtime.evaluate', { expression: `(${inspect})()`, returnByValue: true });
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.text);
    return r.result.value;
  };
  const light = await evaluate();

  const others = requests.filter((u) => u !== pageUrl);
  check('no request left the file', others.length === 0, others.slice(0, 5).join(' '));
  check('nothing in the document refers outside it', light.external.length === 0, light.external.slice(0, 5).join(' '));
  check('the page runs no script', light.scripts === 0, `${light.scripts} <script> elements`);
  check(`the sections are ${sections.join(', ')}`, JSON.stringify(light.sections) === JSON.stringify(sections),
    `on the page: ${light.sections.join(', ')}`);
  check('the contents list links every section', JSON.stringify(light.contents) === JSON.stringify(sections.map((s) => `#${s}`)),
    light.contents.join(' '));
  check(`every figure rendered (${light.svgSizes.length} SVG)`, light.figures > 0 && light.svgSizes.length === light.figures &&
    light.svgSizes.every(([w, h, paths]) => w > 200 && h > 100 && paths > 0), JSON.stringify(light.svgSizes));
  check('every <img> loaded', light.images.every(([, w]) => w > 0), JSON.stringify(light.images));
  check('every figure has alt text and a caption with a sentence', light.svgTitles.every((t) => t.length > 20) &&
    light.captions.every((c) => /^Figure \d+\. .{20,}\.$/.test(c.trim())), JSON.stringify(light.captions));
  check('every table has a header row', light.headers.length > 0 && light.headers.every((n) => n > 0), JSON.stringify(light.headers));
  check('light mode: dark text on a light background, figures in the text colour', luminance(light.colours.background) > 0.8 &&
    luminance(light.colours.body) < 0.3 && light.colours.svgText === light.colours.body, JSON.stringify(light.colours));

  const shot = await page('Page.captureScreenshot', { format: 'png' });
  fs.writeFileSync(screenshot, Buffer.from(shot.data, 'base64'));
  check(`saved a screenshot in ${screenshot}`, fs.statSync(screenshot).size > 10000);

  await page('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'dark' }] });
  const dark = await evaluate();
  check('dark mode: light text on a dark background, figures in the text colour', luminance(dark.colours.background) < 0.2 &&
    luminance(dark.colours.body) > 0.7 && dark.colours.svgText === dark.colours.body, JSON.stringify(dark.colours));
  const darkShot = screenshot.replace(/\.png$/, '-dark.png');
  fs.writeFileSync(darkShot, Buffer.from((await page('Page.captureScreenshot', { format: 'png' })).data, 'base64'));

  await page('Emulation.setEmulatedMedia', { media: 'print', features: [] });
  const print = (await page('Runtime.evaluate', {
    expression: "[getComputedStyle(document.querySelector('nav')).display, document.querySelector('details pre').getBoundingClientRect().height]",
    returnByValue: true,
  })).result.value;
  check('print: the contents list is left out and the folded config is printed', print[0] === 'none' && print[1] > 100,
    JSON.stringify(print));
  clearTimeout(timer);
  finish(failures === 0 ? 0 : 1);
})().catch((e) => {
  check('the DevTools session', false, `${e.message}\n    ${stderr.split('\n').slice(-5).join('\n    ')}`);
  finish(1);
});
