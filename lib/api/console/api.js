// api: GET requests to the daemon's JSON API. With [http] token set, the first
// 401 opens the token dialog (index.html) once, whoever asked; the token is
// kept in sessionStorage (this tab only) and sent as Authorization: Bearer.
// A refused token is forgotten and asked for again.

const TOKEN_KEY = 'deltatap.token';

// The API: Bearer token asked for once, on the first 401

export class ApiError extends Error {
  constructor(status, body, path) {
    const detail = body && (body.detail || body.error);
    super((detail ? detail : 'HTTP ' + status) + ' (' + path + ')');
    this.status = status;
  }
}

let tokenPrompt = null;  // one prompt at a time, shared by every waiting request

function askToken(refused) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  document.getElementById('token-reason').textContent = refused
    ? 'The daemon refused that token; enter the one in its [http] token.'
    : 'This daemon asks for its API token ([http] token).';
  tokenPrompt = new Promise((resolve) => {
    const done = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      form.removeEventListener('submit', done);
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      dialog.close();
      tokenPrompt = null;
      resolve(token);
    };
    form.addEventListener('submit', done);
    dialog.addEventListener('cancel', (event) => event.preventDefault(), {once: true});
    dialog.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// GET `path` from the API; resolves to the Response once it is not a 401.
async function request(path) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = {Accept: 'application/json'};
    if (token) headers.Authorization = 'Bearer ' + token;
    const response = await fetch(path, {headers, cache: 'no-store', credentials: 'omit'});
    if (response.status !== 401) return response;
    const now = sessionStorage.getItem(TOKEN_KEY);
    // Requests run in parallel: one refused with a token since replaced must
    // neither forget the new one nor ask again, only retry with it.
    if (now !== null && now !== token) continue;
    if (now !== null) sessionStorage.removeItem(TOKEN_KEY);
    await askToken(token !== null);
  }
}

async function failure(response, path) {
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  return new ApiError(response.status, body, path);
}

export async function getJson(path, okStatuses = [200]) {
  const response = await request(path);
  if (!okStatuses.includes(response.status)) throw await failure(response, path);
  return response.json();
}

export async function getText(path) {
  const response = await request(path);
  if (response.status !== 200) throw await failure(response, path);
  return response.text();
}
