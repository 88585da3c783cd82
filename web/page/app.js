// kith's page: the journal as this node reads it (specs/web-api.md).
// Everything from the node is shown with textContent, never as HTML.

const NOT_REACHED = "Could not reach your kith node. Is 'kith serve' still running?";
const PHOTOS_MAX = 4;
const PHOTO_BYTES_MAX = 8 * 1024 * 1024;
const STORE_KEY = 'kith.journal';
const VIEWS = ['news', 'help', 'guestbook', 'people', 'join', 'status'];

const state = {
  csrf: '',
  me: null,
  journals: [],
  journal: '',      // id of the journal shown
  timeline: null,
  members: null,
  signedOut: false,
  view: 'news',
};

const $ = (id) => document.getElementById(id);

// ---------- small DOM helpers ----------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Keeps `container`'s children in the order of `items`, one element per item keyed by
// data-id, creating, updating in place and removing as needed. Elements that stay are not
// rebuilt, so a focused button or a half-written comment survives a refresh.
function syncList(container, items, key, create, update) {
  const existing = new Map();
  for (const child of [...container.children]) existing.set(child.dataset.id, child);
  let ref = container.firstElementChild;
  for (const item of items) {
    const id = key(item);
    let node = existing.get(id);
    if (node) existing.delete(id);
    else {
      node = create(item);
      node.dataset.id = id;
    }
    update(node, item);
    if (node === ref) ref = ref.nextElementSibling;
    else container.insertBefore(node, ref);
  }
  for (const node of existing.values()) node.remove();
}

// ---------- words ----------

function sentence(s) {
  s = String(s || '').trim();
  if (!s) return '';
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + '.';
}

function localTime(ms, iso) {
  const d = new Date(typeof ms === 'number' && ms > 0 ? ms : iso);
  if (isNaN(d)) return '';
  return d.toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit' });
}

function timeEl(ms, iso) {
  const t = el('time', { text: localTime(ms, iso) });
  if (iso) t.dateTime = iso;
  return t;
}

function ago(value) {
  if (value === null || value === undefined || value === '') return null;
  const d = new Date(value);
  if (isNaN(d)) return null;
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  let rel;
  if (Math.abs(s) < 60) rel = 'just now';
  else if (Math.abs(s) < 3600) rel = rtf.format(-Math.round(s / 60), 'minute');
  else if (Math.abs(s) < 86400) rel = rtf.format(-Math.round(s / 3600), 'hour');
  else rel = rtf.format(-Math.round(s / 86400), 'day');
  return `${rel} (${localTime(d.getTime())})`;
}

function listNames(names) {
  const n = names.map(String);
  if (n.length === 0) return '';
  if (n.length === 1) return n[0];
  if (n.length > 5) return `${n.slice(0, 4).join(', ')} and ${n.length - 4} others`;
  return `${n.slice(0, -1).join(', ')} and ${n[n.length - 1]}`;
}

function roleWords(role) {
  switch (role) {
    case 'owner': return 'keeps this journal';
    case 'coauthor': return 'can post updates';
    case 'subscriber': return 'can read, comment and send hearts';
    default: return role ? String(role) : '';
  }
}

function sizeWords(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function journalName(j) {
  return j && j.title ? j.title : 'A journal (its title has not arrived yet)';
}

// ---------- talking to the node ----------

class ApiError extends Error {
  constructor(message, hint, status) {
    super(message);
    this.hint = hint || '';
    this.status = status || 0;
  }
}

const STATUS_WORDS = {
  400: 'The node could not use that request.',
  403: 'The node refused that.',
  404: 'That was not found. It may have been deleted.',
  409: 'That clashed with something else that changed. Please try again.',
  413: 'That was too large to send. Try fewer or smaller photos.',
  421: "This page was opened under an address your node does not answer to. Open the link that 'kith web' prints.",
  500: "Your kith node ran into a problem. The details are in its log.",
  502: "Could not reach the other person's computer.",
};

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (method === 'POST') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-Kith-Csrf'] = state.csrf;
    init.body = JSON.stringify(body || {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(NOT_REACHED, '', 0);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.status === 401) {
    showSignedOut();
    throw new ApiError('You are not signed in any more.', "In a terminal, run 'kith web' and open the link it prints.", 401);
  }
  if (!res.ok) {
    const message = data && data.error ? sentence(data.error) : STATUS_WORDS[res.status] || `The node answered with an error (${res.status}).`;
    throw new ApiError(message, data && data.hint ? sentence(data.hint) : '', res.status);
  }
  return data || {};
}

// ---------- errors and notes ----------

// The one error region (data-test="error") moves next to the action that failed.
let errorBox = null;

function showError(err, near) {
  const box = errorBox || (errorBox = $('error'));
  const message = err instanceof ApiError ? err.message : NOT_REACHED;
  const hint = err instanceof ApiError ? err.hint : '';
  if (!(err instanceof ApiError)) console.error(err);
  const at = near || $('live-note');
  if (at.tagName === 'LI' || at.tagName === 'ARTICLE') {
    if (box.parentElement !== at) at.append(box);
  } else if (box.previousElementSibling !== at) at.after(box);
  box.replaceChildren();
  // Set the words a moment after a move, so screen readers announce them.
  requestAnimationFrame(() => {
    box.replaceChildren(el('strong', { text: message }), hint ? ' ' + hint : '');
  });
}

function clearError() {
  (errorBox || (errorBox = $('error'))).replaceChildren();
}

function note(form, text) {
  const n = form.querySelector('.form-note');
  if (n) n.textContent = text || '';
}

// Runs a form's action with its button disabled and a "…ing" label, showing failures near it.
async function busy(button, label, near, action) {
  const old = button.textContent;
  button.disabled = true;
  if (label) button.textContent = label;
  clearError();
  try {
    return await action();
  } catch (err) {
    showError(err, near);
    return undefined;
  } finally {
    button.disabled = false;
    if (label) button.textContent = old;
  }
}

// ---------- signed out ----------

function showSignedOut() {
  state.signedOut = true;
  if (events) {
    events.close();
    events = null;
  }
  $('loading').hidden = true;
  $('signed-out').hidden = false;
  $('tabs').hidden = true;
  $('header-tools').hidden = true;
  $('no-journal').hidden = true;
  setText($('journal-title'), 'Welcome');
  setText($('journal-sub'), 'A private journal for family and friends');
  setText($('me-line'), '');
  document.title = 'Not signed in · kith';
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
}

// ---------- session and journals ----------

async function loadSession() {
  const s = await api('GET', '/api/session');
  state.signedOut = false;
  state.csrf = s.csrf || '';
  state.me = s.me || null;
  state.journals = Array.isArray(s.journals) ? s.journals : [];
  $('signed-out').hidden = true;
  $('loading').hidden = true;
  $('tabs').hidden = false;
  $('header-tools').hidden = false;
  if (state.me) {
    setText($('me-line'), `You are ${state.me.name || 'signed in'}. Your fingerprint: ${state.me.fingerprint || ''}`);
  }
  let chosen = state.journal;
  if (!state.journals.some((j) => j.id === chosen)) {
    let saved = '';
    try { saved = sessionStorage.getItem(STORE_KEY) || ''; } catch { /* storage off */ }
    const active = state.journals.find((j) => j.active) || state.journals[0];
    chosen = state.journals.some((j) => j.id === saved) ? saved : active ? active.id : '';
  }
  state.journal = chosen;
  renderPicker();
}

function renderPicker() {
  const select = $('journal-select');
  $('journal-picker').hidden = state.journals.length < 2;
  select.replaceChildren(...state.journals.map((j) => el('option', {
    value: j.id,
    text: journalName(j) + (j.active === false ? ' (no longer a member)' : ''),
  })));
  select.value = state.journal;
}

function chooseJournal(id) {
  state.journal = id;
  try { sessionStorage.setItem(STORE_KEY, id); } catch { /* storage off */ }
  state.timeline = null;
  state.members = null;
  $('invite-result').hidden = true;
  for (const id of ['updates', 'wishes', 'requests', 'members']) $(id).replaceChildren();
  renderPicker();
  refresh();
}

// ---------- tabs ----------

function currentView() {
  const h = location.hash.replace(/^#/, '');
  return VIEWS.includes(h) ? h : 'news';
}

function showView() {
  if (state.signedOut) return;
  state.view = currentView();
  const noJournal = !state.journal;
  $('no-journal').hidden = !(noJournal && state.view !== 'join' && state.view !== 'status');
  for (const v of document.querySelectorAll('.view')) {
    const needsJournal = !['join', 'status'].includes(v.dataset.view);
    v.hidden = v.dataset.view !== state.view || (needsJournal && noJournal);
  }
  for (const a of document.querySelectorAll('#tabs a')) {
    if (a.dataset.tab === state.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (state.view === 'people' && state.journal) loadMembers();
  if (state.view === 'status') loadStatus();
}

// ---------- refreshing ----------

let refreshing = null;
let again = false;

async function refresh() {
  if (state.signedOut) return;
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      if (state.journal) await loadTimeline();
      else renderHeader(null);
      if (state.view === 'people' && state.journal) await loadMembers();
      if (state.view === 'status') await loadStatus();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showError(err);
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) {
    again = false;
    await refresh();
  }
}

let refreshTimer = 0;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 200);
}

// ---------- header ----------

function renderHeader(j) {
  const title = j ? journalName(j) : state.journals.length ? journalName(state.journals.find((x) => x.id === state.journal)) : 'Your journals';
  setText($('journal-title'), title);
  document.title = `${title} · kith`;
  let sub = '';
  if (j) {
    sub = j.is_owner ? 'You keep this journal.' : j.may_post ? 'You can post updates here.' : 'You can read, comment and send hearts.';
    if (j.active === false) sub = 'You are no longer a member of this journal: what you received stays here, nothing new arrives.';
  }
  setText($('journal-sub'), sub);
}

// ---------- timeline ----------

async function loadTimeline() {
  const id = state.journal;
  const t = await api('GET', `/api/timeline?journal=${encodeURIComponent(id)}`);
  if (id !== state.journal) return;
  state.timeline = t;
  renderTimeline();
}

function renderTimeline() {
  const t = state.timeline;
  const j = t.journal || {};
  renderHeader(j);
  $('post-form').hidden = !j.may_post;
  $('ask-form').hidden = !j.may_ask;

  const updates = [...(t.updates || [])].reverse();
  $('updates-empty').hidden = updates.length > 0;
  syncList($('updates'), updates, (u) => u.id, createEntry, updateEntry);

  const wishes = [...(t.wishes || [])].reverse();
  $('wishes-empty').hidden = wishes.length > 0;
  syncList($('wishes'), wishes, (w) => w.id, createWish, updateWish);

  const requests = sortRequests(t.requests || []);
  $('requests-empty').hidden = requests.some((r) => r.state === 'open');
  const open = requests.filter((r) => r.state === 'open').length;
  setText($('help-count'), open ? `(${open})` : '');
  syncList($('requests'), requests, (r) => r.id, createRequest, updateRequest);

  if (t.unreadable > 0) {
    setText($('live-note'), `${t.unreadable} ${t.unreadable === 1 ? 'entry' : 'entries'} could not be read on this computer.`);
  }
}

// An update: header, text, photos, heart, comments, then the comment form (made once, kept).
function createEntry(u) {
  const formId = `comment-${u.id}`;
  const form = el('form', { class: 'comment-form' },
    el('label', { for: formId, text: 'Write a comment' }),
    el('textarea', { id: formId, name: 'text', rows: '2', 'data-test': 'comment-text-input' }),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit', 'data-test': 'comment-submit', text: 'Send' })),
    el('p', { class: 'form-note', role: 'status', 'aria-live': 'polite' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sendComment(form, u.id);
  });
  const article = el('article', { class: 'card entry', 'data-test': 'update' },
    entryHead(),
    el('p', { class: 'entry-text', 'data-test': 'update-text' }),
    el('div', { class: 'photos' }),
    heartButton(u.id),
    el('h3', { class: 'comments-title visually-hidden', text: 'Comments' }),
    el('ul', { class: 'comments' }),
    form);
  return article;
}

function entryHead() {
  return el('p', { class: 'entry-head' },
    el('span', { class: 'author', 'data-test': 'author' }),
    el('span', { class: 'when' }));
}

function fillHead(node, p) {
  const name = p.author_name || (p.author || '').slice(0, 8) || 'someone';
  setText(node.querySelector('.author'), name === 'you' ? 'You' : name);
  const when = node.querySelector('.when');
  const stamp = localTime(p.time_ms, p.time) + (p.edited ? ' (changed)' : '');
  if (when.textContent !== stamp) when.replaceChildren(timeEl(p.time_ms, p.time), p.edited ? ' (changed)' : '');
}

function updateEntry(article, u) {
  fillHead(article.querySelector('.entry-head'), u);
  setText(article.querySelector('[data-test="update-text"]'), u.text || '');
  fillPhotos(article.querySelector('.photos'), u.photos || [], u.author_name);
  fillHeart(article.querySelector('[data-test="heart"]'), u.hearts);
  const comments = u.comments || [];
  const title = article.querySelector('.comments-title');
  title.textContent = comments.length ? `${comments.length} ${comments.length === 1 ? 'comment' : 'comments'}` : 'Comments';
  title.classList.toggle('visually-hidden', comments.length === 0);
  syncList(article.querySelector('.comments'), comments, (c) => c.id, createComment, updateComment);
}

function createComment(c) {
  return el('li', { class: 'comment', 'data-test': 'comment' },
    entryHead(),
    el('p', { class: 'entry-text', 'data-test': 'comment-text' }),
    el('div', { class: 'photos small-photos' }),
    heartButton(c.id));
}

function updateComment(li, c) {
  fillHead(li.querySelector('.entry-head'), c);
  setText(li.querySelector('[data-test="comment-text"]'), c.text || '');
  fillPhotos(li.querySelector('.photos'), c.photos || [], c.author_name);
  fillHeart(li.querySelector('[data-test="heart"]'), c.hearts);
}

function fillPhotos(box, photos, who) {
  const key = photos.map((p) => p.id).join(',');
  // Rebuild only when the photos changed, or one had not fully arrived last time.
  if (box.dataset.key === key && !box.querySelector('.photo-missing')) return;
  box.dataset.key = key;
  box.hidden = photos.length === 0;
  box.replaceChildren(...photos.map((p) => {
    const name = p.name || 'photo';
    const img = el('img', { src: p.url, alt: name, loading: 'lazy', decoding: 'async', 'data-test': 'photo' });
    const link = el('a', { href: p.url, class: 'photo-link', title: `Open ${name} full size` }, img);
    img.addEventListener('error', () => {
      link.replaceWith(el('p', { class: 'photo-missing', text: `The photo “${name}” is still on its way.` }));
    });
    return link;
  }));
}

function heartButton(entryId) {
  const b = el('button', { type: 'button', class: 'heart', 'data-test': 'heart', 'aria-pressed': 'false' },
    el('span', { class: 'heart-icon', 'aria-hidden': 'true', text: '♥' }), ' ',
    el('span', { 'data-test': 'heart-count', text: '0' }),
    el('span', { class: 'heart-names' }));
  b.addEventListener('click', () => sendHeart(b, entryId));
  return b;
}

function fillHeart(b, hearts) {
  const h = hearts || { count: 0, names: [], mine: false };
  b.setAttribute('aria-pressed', h.mine ? 'true' : 'false');
  setText(b.querySelector('[data-test="heart-count"]'), String(h.count || 0));
  const names = Array.isArray(h.names) ? h.names : [];
  setText(b.querySelector('.heart-names'), h.count ? ` — ${listNames(names.length ? names : [`${h.count} people`])}` : ' — send a heart');
  b.title = h.mine ? 'You sent a heart. Press again to take it back.' : 'Send a heart';
}

// ---------- well-wishes ----------

function createWish(w) {
  return el('article', { class: 'card entry wish', 'data-test': 'wish' },
    entryHead(),
    el('p', { class: 'entry-text', 'data-test': 'wish-body' }),
    el('div', { class: 'photos small-photos' }),
    heartButton(w.id));
}

function updateWish(article, w) {
  fillHead(article.querySelector('.entry-head'), w);
  setText(article.querySelector('[data-test="wish-body"]'), w.text || '');
  fillPhotos(article.querySelector('.photos'), w.photos || [], w.author_name);
  fillHeart(article.querySelector('[data-test="heart"]'), w.hearts);
}

// ---------- requests ----------

function sortRequests(list) {
  const rank = { open: 0, done: 1, cancelled: 2 };
  return [...list].sort((a, b) => {
    const r = (rank[a.state] ?? 3) - (rank[b.state] ?? 3);
    if (r) return r;
    const aw = a.when_ms || (a.when ? Date.parse(a.when) : Infinity);
    const bw = b.when_ms || (b.when ? Date.parse(b.when) : Infinity);
    return aw - bw;
  });
}

function createRequest(r) {
  const li = el('li', { class: 'card request', 'data-test': 'request' },
    el('p', { class: 'request-text' }),
    el('p', { class: 'request-when' }),
    el('p', { class: 'request-who' }),
    el('p', { class: 'request-holders' }),
    el('div', { class: 'form-actions' },
      el('button', { type: 'button', 'data-test': 'claim', text: 'I can help' }),
      el('button', { type: 'button', class: 'button-quiet', 'data-test': 'unclaim', text: 'I can’t after all' }),
      el('button', { type: 'button', class: 'button-quiet', 'data-test': 'done', text: 'Mark as done' }),
      el('button', { type: 'button', class: 'button-quiet', 'data-test': 'cancel', text: 'No longer needed' })),
    el('p', { class: 'form-note', role: 'status', 'aria-live': 'polite' }));
  li.querySelector('[data-test="claim"]').addEventListener('click', (e) => sendClaim(li, e.currentTarget, r.id, true));
  li.querySelector('[data-test="unclaim"]').addEventListener('click', (e) => sendClaim(li, e.currentTarget, r.id, false));
  li.querySelector('[data-test="done"]').addEventListener('click', (e) => sendClose(li, e.currentTarget, r.id, 'done'));
  li.querySelector('[data-test="cancel"]').addEventListener('click', (e) => sendClose(li, e.currentTarget, r.id, 'cancel'));
  return li;
}

function nameOf(h) {
  return typeof h === 'string' ? h : h && (h.name || (h.key || '').slice(0, 8)) || 'someone';
}

function updateRequest(li, r) {
  li.classList.toggle('finished', r.state !== 'open');
  setText(li.querySelector('.request-text'), r.text || '');
  const when = r.when ? localTime(r.when_ms, r.when) : 'Any time';
  const stateWords = r.state === 'done' ? ' · Done, thank you' : r.state === 'cancelled' ? ' · No longer needed' : '';
  setText(li.querySelector('.request-when'), `When: ${when}${stateWords}`);
  setText(li.querySelector('.request-who'), r.asked_by ? `Asked by ${r.asked_by}` : '');
  const holders = r.holders || [];
  const slots = r.slots || 1;
  let who = `${holders.length} of ${slots} ${slots === 1 ? 'person' : 'people'} ${holders.length === 1 ? 'has' : 'have'} offered`;
  if (holders.length) who += `: ${listNames(holders.map(nameOf))}`;
  if (r.waiting && r.waiting.length) who += `. Waiting in case a place frees up: ${listNames(r.waiting.map(nameOf))}`;
  setText(li.querySelector('.request-holders'), who);
  const claim = li.querySelector('[data-test="claim"]');
  const unclaim = li.querySelector('[data-test="unclaim"]');
  const open = r.state === 'open';
  claim.hidden = !open || !!r.mine;
  unclaim.hidden = !open || !r.mine;
  setText(claim, holders.length >= slots ? 'I can help (join the waiting list)' : 'I can help');
  const family = !!(state.timeline && state.timeline.journal && state.timeline.journal.may_ask);
  li.querySelector('[data-test="done"]').hidden = !open || !family;
  li.querySelector('[data-test="cancel"]').hidden = !open || !family;
}

// ---------- writing ----------

function readPhoto(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener('load', () => {
      const s = String(reader.result || '');
      resolve({ name: file.name, data: s.slice(s.indexOf(',') + 1) });
    });
    reader.addEventListener('error', () => reject(new ApiError(`The photo “${file.name}” could not be read.`, 'Choose it again, or another one.')));
    reader.readAsDataURL(file);
  });
}

function photoProblem(files) {
  if (files.length > PHOTOS_MAX) {
    return new ApiError(`You chose ${files.length} photos, but one update can carry at most ${PHOTOS_MAX}.`, 'Choose fewer, and post the others in another update.');
  }
  const big = files.filter((f) => f.size > PHOTO_BYTES_MAX);
  if (big.length) {
    const which = big.map((f) => `“${f.name}” (${sizeWords(f.size)})`).join(', ');
    return new ApiError(`Each photo can be at most 8 MB. Too big: ${which}.`, 'Choose a smaller photo, or make it smaller first.');
  }
  const notImages = files.filter((f) => f.type && !f.type.startsWith('image/'));
  if (notImages.length) {
    return new ApiError(`“${notImages[0].name}” is not a photo.`, 'Choose picture files only.');
  }
  return null;
}

function showChosenPhotos() {
  const input = $('post-photos');
  const files = [...input.files];
  $('post-photos-chosen').replaceChildren(...files.map((f) => el('li', { text: `${f.name} (${sizeWords(f.size)})` })));
  const problem = photoProblem(files);
  if (problem) showError(problem, input.closest('form'));
  else clearError();
}

async function sendPost(form) {
  const textarea = $('post-text');
  const input = $('post-photos');
  const text = textarea.value.trim();
  const files = [...input.files];
  if (!text && files.length === 0) {
    showError(new ApiError('Write something first.', ''), form);
    textarea.focus();
    return;
  }
  const problem = photoProblem(files);
  if (problem) {
    showError(problem, form);
    return;
  }
  note(form, files.length ? 'Posting… (photos can take a moment)' : 'Posting…');
  const ok = await busy($('post-submit'), 'Posting…', form, async () => {
    const photos = await Promise.all(files.map(readPhoto));
    await api('POST', '/api/post', { journal: state.journal, text, photos });
    return true;
  });
  if (ok) {
    textarea.value = '';
    input.value = '';
    $('post-photos-chosen').replaceChildren();
    note(form, 'Posted. Everyone will see it when their computer is connected.');
    await refresh();
  } else {
    note(form, '');
  }
}

async function sendComment(form, entry) {
  const textarea = form.querySelector('textarea');
  const text = textarea.value.trim();
  if (!text) {
    showError(new ApiError('Write a comment first.', ''), form);
    textarea.focus();
    return;
  }
  const ok = await busy(form.querySelector('button[type="submit"]'), 'Sending…', form, async () => {
    await api('POST', '/api/comment', { entry, text });
    return true;
  });
  if (ok) {
    textarea.value = '';
    note(form, 'Your comment was sent.');
    await refresh();
  }
}

async function sendHeart(button, entry) {
  if (button.disabled) return;
  const ok = await busy(button, null, button, async () => {
    await api('POST', '/api/heart', { entry });
    return true;
  });
  if (ok) await refresh();
}

async function sendWish(form) {
  const textarea = $('wish-text');
  const text = textarea.value.trim();
  if (!text) {
    showError(new ApiError('Write your well-wish first.', ''), form);
    textarea.focus();
    return;
  }
  const ok = await busy(form.querySelector('button[type="submit"]'), 'Sending…', form, async () => {
    await api('POST', '/api/wish', { journal: state.journal, text });
    return true;
  });
  if (ok) {
    textarea.value = '';
    note(form, 'Thank you. Your well-wish was sent.');
    await refresh();
  }
}

async function sendAsk(form) {
  const input = $('ask-text');
  const text = input.value.trim();
  if (!text) {
    showError(new ApiError('Write what would help first, for example “A meal for Thursday”.', ''), form);
    input.focus();
    return;
  }
  const whenText = $('ask-when').value;
  const whenMs = whenText ? new Date(whenText).getTime() : 0;
  if (Number.isNaN(whenMs)) {
    showError(new ApiError('That date and time is not complete.', 'Fill in both, or leave it empty for “any time”.'), form);
    return;
  }
  const slots = Math.max(1, Math.min(100, parseInt($('ask-slots').value, 10) || 1));
  const ok = await busy(form.querySelector('button[type="submit"]'), 'Asking…', form, async () => {
    await api('POST', '/api/ask', { journal: state.journal, text, when_ms: whenMs, slots });
    return true;
  });
  if (ok) {
    input.value = '';
    $('ask-when').value = '';
    $('ask-slots').value = '1';
    note(form, 'Asked. Your friends see it under “Help wanted” and can offer.');
    await refresh();
  }
}

async function sendClose(li, button, request, how) {
  const answer = await busy(button, 'Sending…', li, () => api('POST', `/api/${how}`, { request }));
  if (answer) {
    note(li, how === 'done' ? 'Marked as done. Thank you to everyone who helped.' : 'Marked as no longer needed.');
    await refresh();
  }
}

async function sendClaim(li, button, request, claim) {
  const answer = await busy(button, claim ? 'Offering…' : 'Sending…', li, () =>
    api('POST', claim ? '/api/claim' : '/api/unclaim', { request }));
  if (answer) {
    let words = 'Thank you. Your offer was sent.';
    if (claim && answer.state === 'waiting') words = 'All places were taken: you are on the waiting list, and will be asked if one frees up.';
    if (!claim) words = 'Done: you are no longer down for this.';
    note(li, words);
    await refresh();
    const next = li.querySelector(claim ? '[data-test="unclaim"]' : '[data-test="claim"]');
    if (next && !next.hidden && document.activeElement === document.body) next.focus();
  }
}

// ---------- people ----------

async function loadMembers() {
  const id = state.journal;
  try {
    const m = await api('GET', `/api/members?journal=${encodeURIComponent(id)}`);
    if (id !== state.journal) return;
    state.members = m;
    renderMembers();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(err, $('members'));
  }
}

function renderMembers() {
  const m = state.members;
  const owner = !!m.is_owner;
  $('invite-form').hidden = !owner;
  $('invite-not-owner').hidden = owner;
  const members = [...(m.members || [])].sort((a, b) => (b.active !== false) - (a.active !== false));
  syncList($('members'), members, (x) => x.key, createMember, (li, x) => updateMember(li, x, owner));
}

function createMember(x) {
  const li = el('li', { class: 'card member', 'data-test': 'member' },
    el('p', { class: 'member-name' }),
    el('p', { class: 'member-role' }),
    el('p', { class: 'member-fp' }, 'Fingerprint: ', el('span', { class: 'fingerprint' })),
    el('div', { class: 'form-actions member-actions' },
      el('button', { type: 'button', class: 'button-danger', 'data-test': 'remove', text: 'Remove' })),
    el('div', { class: 'confirm', hidden: true },
      el('p', { class: 'confirm-text' }),
      el('div', { class: 'form-actions' },
        el('button', { type: 'button', class: 'button-danger', 'data-test': 'remove-confirm', text: 'Yes, remove' }),
        el('button', { type: 'button', class: 'button-quiet', 'data-test': 'remove-cancel', text: 'No, keep' }))),
    el('p', { class: 'form-note', role: 'status', 'aria-live': 'polite' }));
  const remove = li.querySelector('[data-test="remove"]');
  const confirm = li.querySelector('.confirm');
  remove.addEventListener('click', () => {
    confirm.hidden = false;
    remove.hidden = true;
    li.querySelector('[data-test="remove-cancel"]').focus();
  });
  li.querySelector('[data-test="remove-cancel"]').addEventListener('click', () => {
    confirm.hidden = true;
    remove.hidden = false;
    remove.focus();
  });
  li.querySelector('[data-test="remove-confirm"]').addEventListener('click', async (e) => {
    const name = li.dataset.name;
    const answer = await busy(e.currentTarget, 'Removing…', li, () =>
      api('POST', '/api/revoke', { journal: state.journal, member: x.key }));
    if (answer) {
      confirm.hidden = true;
      note(li, `${name} was removed. They cannot read anything new; what they already saw stays with them.`);
      await loadMembers();
    }
  });
  return li;
}

function updateMember(li, x, owner) {
  const name = x.name || (x.key || '').slice(0, 8);
  li.dataset.name = name;
  li.classList.toggle('finished', x.active === false);
  setText(li.querySelector('.member-name'), !x.you ? name : name === 'you' ? 'You' : `${name} (you)`);
  const role = roleWords(x.role);
  setText(li.querySelector('.member-role'), x.active === false ? 'Removed: cannot read anything new' : role ? `${sentence(role)}` : '');
  setText(li.querySelector('.fingerprint'), x.fingerprint || '');
  const canRemove = owner && !x.you && x.active !== false;
  const confirm = li.querySelector('.confirm');
  const remove = li.querySelector('[data-test="remove"]');
  if (!canRemove) {
    remove.hidden = true;
    confirm.hidden = true;
  } else if (confirm.hidden) {
    remove.hidden = false;
  }
  setText(remove, `Remove ${name}`);
  setText(li.querySelector('.confirm-text'), `Remove ${name} from this journal? They will not see anything new. What they already saw stays with them.`);
}

async function sendInvite(form) {
  const label = $('invite-label').value.trim();
  const role = form.querySelector('input[name="role"]:checked')?.value || 'subscriber';
  note(form, 'Making the code…');
  const answer = await busy(form.querySelector('button[type="submit"]'), 'Making the code…', form, () =>
    api('POST', '/api/invite', { journal: state.journal, label, role }));
  note(form, '');
  if (!answer) return;
  $('invite-label').value = '';
  showInvite(answer, label, role);
}

function showInvite(a, label, role) {
  const box = $('invite-result');
  setText($('invite-code'), a.code || '');
  const forWhom = a.label || label;
  setText($('invite-for'), `${forWhom ? `For ${forWhom}` : 'For one person'}: they ${roleWords(a.role || role) || 'can read'}.`);
  const expires = a.expires ? localTime(Date.parse(a.expires), a.expires) : '';
  setText($('invite-expires'), expires ? `It works until ${expires}.` : '');
  setText($('invite-copy-note'), '');
  const qr = $('invite-qr');
  qr.replaceChildren();
  const img = qrImage(a.qr_svg);
  if (img) qr.append(img);
  box.hidden = false;
  box.focus();
}

// The QR code from the node as an <img> of a data: URL: an SVG shown as an image runs no script
// and loads nothing, whatever it holds.
function qrImage(text) {
  if (typeof text !== 'string' || !/<svg[\s>]/.test(text)) return null;
  return el('img', {
    src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`,
    alt: 'The invite code as a QR code, for a phone camera',
    width: '256', height: '256',
  });
}

async function copyInvite() {
  const code = $('invite-code').textContent;
  let ok = false;
  try {
    await navigator.clipboard.writeText(code);
    ok = true;
  } catch {
    // Select the code so that Ctrl+C (or a long press) copies it.
    const range = document.createRange();
    range.selectNodeContents($('invite-code'));
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
  setText($('invite-copy-note'), ok ? 'Copied. You can paste it into a message now.' : 'The code is selected: press Ctrl+C to copy it.');
}

// ---------- join ----------

async function sendAccept(form) {
  const input = $('accept-code');
  const code = input.value.trim();
  const result = $('accept-result');
  if (!code) {
    showError(new ApiError('Type or paste the invite code first.', ''), form);
    input.focus();
    return;
  }
  result.hidden = true;
  note(form, 'Joining… This can take up to a minute while your computer reaches theirs.');
  const answer = await busy(form.querySelector('button[type="submit"]'), 'Joining…', form, () =>
    api('POST', '/api/accept', { code }));
  note(form, '');
  if (!answer) return;
  input.value = '';
  const title = answer.title || 'the journal';
  const got = typeof answer.received === 'number' ? ` ${answer.received} ${answer.received === 1 ? 'entry has' : 'entries have'} arrived so far.` : '';
  result.replaceChildren(
    el('h3', { text: 'You joined' }),
    el('p', { text: `You are now in “${title}”: you ${roleWords(answer.role) || 'can read it'}.${got}` }));
  if (answer.journal) {
    const open = el('button', { type: 'button', text: 'Open it' });
    open.addEventListener('click', () => {
      chooseJournal(answer.journal);
      location.hash = '#news';
    });
    result.append(el('div', { class: 'form-actions' }, open));
  }
  result.hidden = false;
  result.focus();
  try {
    await loadSession();
    if (answer.journal && state.journals.some((j) => j.id === answer.journal) && !state.timeline) chooseJournal(answer.journal);
  } catch (err) {
    showError(err, result);
  }
}

// ---------- status ----------

async function loadStatus() {
  const body = $('status-body');
  try {
    const s = await api('GET', '/api/status');
    renderStatus(s);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      body.replaceChildren(el('p', { class: 'problem', text: err.message || NOT_REACHED }));
    }
  }
}

function reachWords(x) {
  if (x.connected) return 'Connected now';
  const seen = ago(x.last_seen);
  return seen ? `Not connected. Last reached ${seen}.` : 'Not connected. Not reached yet.';
}

function renderStatus(s) {
  const names = new Map();
  for (const m of (state.members && state.members.members) || []) names.set(m.key, m.name);
  const titles = new Map(state.journals.map((j) => [j.id, journalName(j)]));
  const peers = s.peers || [];
  const relays = s.relays || [];
  const up = peers.filter((p) => p.connected).length;
  const parts = [
    el('p', { class: 'status-summary', text: peers.length
      ? `${up} of ${peers.length} ${peers.length === 1 ? 'computer is' : 'computers are'} connected right now.`
      : 'Your computer does not know any other computers yet. Joining a journal or inviting someone adds them.' }),
  ];
  if (peers.length) {
    parts.push(el('h3', { text: 'Computers of people in your journals' }));
    parts.push(el('ul', { class: 'plain-list status-list' }, ...peers.map((p) => el('li', { class: p.connected ? 'up' : 'down', 'data-test': 'peer' },
      el('p', { class: 'status-name' }, el('span', { class: 'dot', 'aria-hidden': 'true' }),
        el('strong', { text: names.get(p.key) || `Computer ${(p.key || '').slice(0, 8)}` })),
      el('p', { class: 'status-words', text: reachWords(p) })))));
  }
  if (relays.length) {
    parts.push(el('h3', { text: 'Relays (they pass posts along while computers sleep)' }));
    parts.push(el('ul', { class: 'plain-list status-list' }, ...relays.map((r) => el('li', { class: r.connected ? 'up' : 'down', 'data-test': 'relay' },
      el('p', { class: 'status-name' }, el('span', { class: 'dot', 'aria-hidden': 'true' }),
        el('strong', { text: r.address || 'A relay' }),
        r.journal && titles.get(r.journal) ? ` for “${titles.get(r.journal)}”` : ''),
      el('p', { class: 'status-words', text: reachWords(r) }),
      r.error && !r.connected ? el('p', { class: 'status-words problem', text: `Problem: ${sentence(r.error)}` }) : null))));
  }
  const where = [];
  if (s.listen) where.push(`Your node listens for friends’ computers at ${s.listen}.`);
  if (s.web) where.push(`This page is at http://${s.web}/.`);
  if (where.length) parts.push(el('p', { class: 'small', text: where.join(' ') }));
  $('status-body').replaceChildren(...parts);
}

// ---------- live updates ----------

let events = null;
let eventRetry = 0;

function listen() {
  if (events || state.signedOut || typeof EventSource === 'undefined') return;
  events = new EventSource('/api/events');
  events.addEventListener('open', () => {
    setText($('live-note'), '');
  });
  events.addEventListener('changed', (e) => {
    let ids = [];
    try { ids = JSON.parse(e.data).journals || []; } catch { ids = []; }
    if (ids.some((id) => !state.journals.some((j) => j.id === id))) {
      loadSession().then(refreshSoon, () => {});
    } else if (ids.length === 0 || ids.includes(state.journal) || state.view === 'status') {
      refreshSoon();
    }
  });
  events.addEventListener('error', () => {
    if (!events || events.readyState !== EventSource.CLOSED) {
      setText($('live-note'), "Lost touch with your kith node for a moment. Trying again… (Is 'kith serve' still running?)");
      return;
    }
    events = null;
    clearTimeout(eventRetry);
    eventRetry = setTimeout(async () => {
      try {
        await loadSession();
        setText($('live-note'), '');
        listen();
        refresh();
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) {
          setText($('live-note'), NOT_REACHED);
          listen();
        }
      }
    }, 5000);
  });
}

// ---------- start ----------

function wire() {
  $('post-form').addEventListener('submit', (e) => { e.preventDefault(); sendPost(e.currentTarget); });
  $('ask-form').addEventListener('submit', (e) => { e.preventDefault(); sendAsk(e.currentTarget); });
  $('post-photos').addEventListener('change', showChosenPhotos);
  $('wish-form').addEventListener('submit', (e) => { e.preventDefault(); sendWish(e.currentTarget); });
  $('invite-form').addEventListener('submit', (e) => { e.preventDefault(); sendInvite(e.currentTarget); });
  $('accept-form').addEventListener('submit', (e) => { e.preventDefault(); sendAccept(e.currentTarget); });
  $('invite-copy').addEventListener('click', copyInvite);
  $('status-refresh').addEventListener('click', () => loadStatus());
  $('journal-select').addEventListener('change', (e) => chooseJournal(e.currentTarget.value));
  $('sign-out').addEventListener('click', async (e) => {
    const ok = await busy(e.currentTarget, 'Signing out…', $('header-tools'), async () => {
      await api('POST', '/api/logout', {});
      return true;
    });
    if (ok) showSignedOut();
  });
  window.addEventListener('hashchange', () => {
    showView();
    const v = document.querySelector(`.view[data-view="${state.view}"] h2`);
    if (v) {
      v.setAttribute('tabindex', '-1');
      v.focus();
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshSoon();
  });
}

async function start() {
  wire();
  try {
    await loadSession();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      $('loading').textContent = err instanceof ApiError ? `${err.message} ${err.hint}` : NOT_REACHED;
    }
    return;
  }
  showView();
  await refresh();
  listen();
}

start();
