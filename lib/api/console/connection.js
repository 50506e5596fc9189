// connection: the pill in the header that says whether the tap is connected
// (GET /api/stats), refreshed by every page.

import {getJson} from './api.js';

export async function refreshConnection() {
  const pill = document.getElementById('connection');
  try {
    const stats = await getJson('/api/stats');
    pill.className = 'pill ' + (stats.connected === true ? 'ok' : stats.connected === false ? 'bad' : '');
    pill.textContent = stats.connected === true ? 'connected'
        : stats.connected === false ? 'disconnected' : 'offline';
    return stats;
  } catch (e) {
    pill.className = 'pill bad';
    pill.textContent = 'no answer';
    throw e;
  }
}
