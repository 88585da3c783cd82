// The sign-in page: takes the one-time token from the link's #fragment (which no server sees),
// sends it once to POST /login, and goes to the journal (specs/web-api.md, "Signing in").

const title = document.getElementById('login-title');
const message = document.getElementById('login-message');
const help = document.getElementById('login-help');

function sentence(s) {
  s = String(s || '').trim();
  if (!s) return '';
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + '.';
}

function fail(heading, text) {
  title.textContent = heading;
  message.textContent = text;
  help.hidden = false;
  document.title = 'Not signed in · kith';
}

async function signIn() {
  const token = location.hash.replace(/^#/, '').trim();
  // The token must not stay in the address bar or the history.
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  if (!token) {
    fail('You need a sign-in link', 'This page opens your journal from a sign-in link, and this address has none.');
    return;
  }
  let res;
  try {
    res = await fetch('/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  } catch {
    fail('Could not sign in', "Could not reach your kith node. Is 'kith serve' still running?");
    return;
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.ok && data && data.ok !== false) {
    title.textContent = 'Signed in';
    message.textContent = 'Opening your journal…';
    location.replace('/');
    return;
  }
  const error = data && data.error ? sentence(data.error) : res.status === 403
    ? 'This sign-in link was used already or is too old.'
    : `Your kith node refused the sign-in (${res.status}).`;
  let hint = data && data.hint ? String(data.hint).trim() : "run 'kith web' again for a new link";
  // "run 'kith web' …" reads best as "In a terminal, run 'kith web' …".
  hint = /^run\b/i.test(hint) ? `In a terminal, ${hint[0].toLowerCase()}${sentence(hint).slice(1)}` : sentence(hint);
  fail('Could not sign in', `${error} ${hint}`);
}

signIn();
// A new link pasted into this same tab changes only the fragment: sign in with it too.
window.addEventListener('hashchange', () => {
  if (location.hash.length > 1) signIn();
});
