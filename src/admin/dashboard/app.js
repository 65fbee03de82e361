// smdpp-mock dashboard: polls the admin API once a second and updates the tables in place.
//
// Journal entries and delivery records carry client-supplied strings, so nothing here ever
// assigns markup: every node is made with createElement and filled with textContent.
'use strict';

const STATES = ['Available', 'Allocated', 'Linked', 'Confirmed', 'Released',
  'Downloaded', 'Installed', 'Error', 'Unavailable'];
const REFRESH_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const JOURNAL_KEEP = 200;   // rows kept in the journal table
const NOTIF_SHOW = 50;      // rows shown in the notifications table
const MAX_LIMIT = 1000;     // the admin API's largest `limit`
// SGP.22 Table 32a; other ids are the scenario's local enable/disable/delete points.
const POINTS = { 1: 'Eligibility & retry limit', 2: 'Confirmation failure',
  3: 'BPP download', 4: 'BPP installation' };

const $ = (sel) => document.querySelector(sel);

// Builds an element: `props` may hold className, title and a `data` object (→ dataset).
function el(tag, props = {}, text) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.title) node.title = props.title;
  if (props.colSpan) node.colSpan = props.colSpan;
  for (const [k, v] of Object.entries(props.data || {})) node.dataset[k] = String(v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// An instance started with --admin-token wants it on every data request: open the page as
// /admin/dashboard#token=... once; it is kept for the tab's lifetime and taken out of the URL.
const token = (() => {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('smdpp-admin-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('smdpp-admin-token');
})();

async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const res = await fetch(path, { signal: ctl.signal, cache: 'no-store', headers });
    if (res.status === 401) throw new Error('401: open this page as /admin/dashboard#token=<admin token>');
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return await res.json();
  } finally {
    clearTimeout(timer);
  }
}

const fmtTime = (t) => (typeof t === 'string' && t.length >= 19 ? t.slice(11, 19) : t || '');
const fmtUs = (us) => (us < 1000 ? `${us} µs` : `${(us / 1000).toFixed(us < 100000 ? 1 : 0)} ms`);
const pretty = (v) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));

// ---- header ----------------------------------------------------------------------------

function setText(id, v) {
  const node = document.getElementById(id);
  const text = v === undefined || v === null ? '–' : String(v);
  if (node.textContent !== text) node.textContent = text;
}

function renderCounters(s) {
  const j = s.journal || {};
  const n = s.notifications || {};
  setText('journal-last-seq', j.lastSeq);
  setText('notif-queued', n.queued);
  setText('notif-delivered', n.delivered);
  setText('notif-failed', n.failed);
  setText('notif-dropped', (n.droppedQueueFull || 0) + (n.droppedByFault || 0));
  setText('queue-depth', n.queueDepth);
}

function setStatus(live, detail) {
  const s = $('#status');
  s.textContent = live ? 'live' : 'disconnected';
  s.dataset.state = live ? 'live' : 'disconnected';
  s.title = detail || '';
  document.body.classList.toggle('disconnected', !live);
}

// ---- profiles --------------------------------------------------------------------------

function renderProfiles(profiles) {
  const rows = [...(profiles || [])].sort((a, b) =>
    String(a.operator).localeCompare(String(b.operator)) ||
    String(a.profileType).localeCompare(String(b.profileType)));
  const sums = Object.fromEntries(STATES.map((st) => [st, 0]));
  let grand = 0;
  const trs = rows.map((p) => {
    const tr = el('tr', { data: { operator: p.operator, profileType: p.profileType } });
    tr.append(el('td', { className: 'operator' }, p.operator),
      el('td', { className: 'profile-type' }, p.profileType));
    for (const st of STATES) {
      const n = (p.states && p.states[st]) || 0;
      sums[st] += n;
      tr.append(el('td', { className: n ? 'num' : 'num zero', data: { state: st } }, n));
    }
    grand += p.total || 0;
    tr.append(el('td', { className: 'num total', data: { state: 'Total' } }, p.total || 0));
    return tr;
  });
  $('#profiles tbody').replaceChildren(...trs);
  // A totals row only helps when there is more than one row to add up.
  const foot = $('#profiles-total');
  if (rows.length > 1) {
    const tr = el('tr');
    tr.append(el('td', { colSpan: 2 }, 'All'));
    for (const st of STATES) {
      tr.append(el('td', { className: sums[st] ? 'num' : 'num zero', data: { state: st } }, sums[st]));
    }
    tr.append(el('td', { className: 'num total', data: { state: 'Total' } }, grand));
    foot.replaceChildren(tr);
  } else {
    foot.replaceChildren();
  }
}

// ---- conformance -----------------------------------------------------------------------

function renderConformance(summary, report) {
  for (const f of ['checks', 'passed', 'failed', 'notExercised', 'failedErrors']) {
    const dd = $(`#conformance [data-field="${f}"]`);
    const text = String(summary && summary[f] !== undefined ? summary[f] : '–');
    if (dd.textContent !== text) dd.textContent = text;
  }
  const failed = ((report && report.checks) || []).filter((c) => c.result === 'failed');
  const items = failed.map((c) => {
    const li = el('li', { data: { checkId: c.id, severity: c.severity } });
    li.append(el('span', { className: 'check-id' }, c.id),
      el('span', { className: `severity ${c.severity}` }, c.severity),
      el('span', { className: 'check-title', title: c.reference }, c.title),
      el('span', { className: 'muted' }, `×${c.failed}`));
    // The newest failure says what was wrong (the list is capped by the server).
    const failures = c.failures || [];
    const last = failures[failures.length - 1];
    if (last) {
      const seq = last.journalSeq ? ` (journal #${last.journalSeq})` : '';
      li.append(el('div', { className: 'failure-message' }, `${last.message}${seq}`));
    }
    return li;
  });
  $('#conformance-failures').replaceChildren(...items);
  $('#conformance-ok').hidden = items.length > 0;
}

// ---- expandable detail rows ------------------------------------------------------------

// Detail rows sit right after the row they belong to and carry class "detail".
function detailRow(colSpan, parts) {
  const tr = el('tr', { className: 'detail' });
  const td = el('td', { colSpan });
  for (const [label, value] of parts) {
    if (value === undefined || value === null || value === '') continue;
    const box = el('div', { className: 'detail-part' });
    box.append(el('div', { className: 'detail-label' }, label),
      typeof value === 'object' || String(value).includes('\n')
        ? el('pre', {}, pretty(value)) : el('div', { className: 'detail-value' }, value));
    td.append(box);
  }
  tr.append(td);
  return tr;
}

// Whether a click on `tr` ended a text selection inside it (then it should not toggle).
function isSelecting(tr) {
  const sel = window.getSelection();
  return Boolean(sel && !sel.isCollapsed && tr.contains(sel.anchorNode));
}

// ---- journal ---------------------------------------------------------------------------

// The journal is a seq-ordered ring with no gaps (a reset empties it but seqs go on), so
// from lastSeq and the entry count we know exactly which seqs still exist.
const journal = { seen: 0, entries: new Map() };

function journalStatus(e) {
  if (!e.status) return `HTTP ${e.httpStatus}`;
  if (e.status !== 'Failed') return e.status;
  let code = e.statusCode;
  if (!code) {
    const d = e.response && e.response.header && e.response.header.functionExecutionStatus &&
      e.response.header.functionExecutionStatus.statusCodeData;
    if (d) code = `${d.subjectCode}/${d.reasonCode}`;
  }
  return code ? `Failed ${code}` : 'Failed';
}

function failureMessage(e) {
  const h = e.response && typeof e.response === 'object' && e.response.header;
  const d = h && h.functionExecutionStatus && h.functionExecutionStatus.statusCodeData;
  return (d && d.message) || '';
}

function journalRow(e) {
  const failed = e.status === 'Failed' || e.httpStatus >= 400;
  const tr = el('tr', { className: failed ? 'failed' : '', data: { seq: e.seq } });
  tr.append(
    el('td', { className: 'seq num' }, e.seq),
    el('td', { className: 'time', title: e.time }, fmtTime(e.time)),
    el('td', { className: 'function', title: e.function }, e.function),
    el('td', { className: 'operator', title: e.certificateSubject || '' }, e.operator || '–'),
    el('td', { className: 'iccid' }, e.iccid || ''),
    el('td', { className: 'status', title: failureMessage(e) }, journalStatus(e) + (e.fault ? ' ⚑' : '')),
    el('td', { className: 'elapsed num', data: { us: e.elapsedUs } }, fmtUs(e.elapsedUs || 0)));
  return tr;
}

function journalDetail(e) {
  return detailRow(7, [
    ['functionCallIdentifier', e.functionCallIdentifier],
    ['HTTP status', e.httpStatus],
    ['Source', e.sourceIp],
    ['Certificate', e.certificateSubject],
    ['Fault rule', e.fault],
    ['Request', e.request],
    ['Response', e.response],
  ]);
}

function removeJournalRow(tr) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains('detail')) next.remove();
  journal.entries.delete(Number(tr.dataset.seq));
  tr.remove();
}

function clearJournal() {
  $('#journal tbody').replaceChildren();
  journal.entries.clear();
  journal.seen = 0;
}

// `restart`: forget the rows shown and read the newest entries afresh (after an outage the
// server may have restarted, and its seqs with it).
async function fetchJournal(info, restart) {
  const lastSeq = info.lastSeq || 0;
  restart = restart || lastSeq < journal.seen; // seqs went back: the server restarted
  const since = Math.max(restart ? 0 : journal.seen, lastSeq - JOURNAL_KEEP);
  // `limit` takes the OLDEST matching entries, hence `since` to get the newest ones.
  const page = await getJSON(`/admin/journal?since=${since}&limit=${JOURNAL_KEEP}`);
  return { page, restart, oldest: lastSeq - (info.entries || 0) + 1 };
}

function renderJournal({ page, restart, oldest }) {
  if (restart) clearJournal();
  const tbody = $('#journal tbody');
  // Drop rows the server no longer holds (POST /admin/reset empties the journal).
  for (const tr of [...tbody.querySelectorAll('tr[data-seq]')]) {
    if (Number(tr.dataset.seq) < oldest) removeJournalRow(tr);
  }
  const fresh = (page.entries || []).filter((e) => e.seq > journal.seen);
  if (fresh.length) {
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) { // oldest first from the server
      frag.append(journalRow(fresh[i]));
      journal.entries.set(fresh[i].seq, fresh[i]);
    }
    tbody.prepend(frag);
    journal.seen = fresh[fresh.length - 1].seq;
  }
  const rows = tbody.querySelectorAll('tr[data-seq]');
  for (let i = rows.length - 1; i >= JOURNAL_KEEP; i--) removeJournalRow(rows[i]);
}

$('#journal tbody').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-seq]');
  if (!tr || isSelecting(tr)) return;
  const next = tr.nextElementSibling;
  if (next && next.classList.contains('detail')) { next.remove(); tr.classList.remove('open'); return; }
  const e = journal.entries.get(Number(tr.dataset.seq));
  if (e) { tr.after(journalDetail(e)); tr.classList.add('open'); }
});

// ---- notifications ---------------------------------------------------------------------

// Records change state in place, so the newest NOTIF_SHOW are re-read each time; `base` is
// an id below them, moved up as the log grows so the server sends little beyond them.
const notif = { base: 0, expanded: new Set(), byId: new Map() };

async function fetchNotifications(lastId) {
  // The log answers oldest first: start just below the newest rows, as for the journal.
  if (typeof lastId === 'number') notif.base = Math.max(notif.base, lastId - NOTIF_SHOW);
  const url = () => `/admin/notifications?since=${notif.base}&limit=${MAX_LIMIT}`;
  let recs = (await getJSON(url())).notifications || [];
  if (!recs.length && notif.base > 0) { // ids went back (restart) or the log was emptied
    notif.base = 0;
    recs = (await getJSON(url())).notifications || [];
  }
  if (recs.length > NOTIF_SHOW) notif.base = recs[recs.length - NOTIF_SHOW - 1].id;
  return recs.slice(-NOTIF_SHOW).reverse();
}

function pointOf(r) {
  const body = r.body || {};
  const status = body.notificationPointStatus || {};
  const d = status.statusCodeData;
  let event = status.status || '';
  if (d) event += ` ${d.subjectCode}/${d.reasonCode}`;
  return { label: r.point || POINTS[r.notificationPointId] || `Point ${r.notificationPointId}`, event,
    message: (d && d.message) || '' };
}

function lastAttempt(r) {
  const a = (r.attempts || [])[(r.attempts || []).length - 1];
  if (!a) return r.reason || '–';
  const parts = [a.status ? String(a.status) : 'no answer'];
  // "answered 500" only repeats the status; other notes (timeouts, 200-not-204) say more.
  if (a.error && a.error !== `answered ${a.status}`) parts.push(a.error);
  parts.push(`${a.latencyMs} ms`);
  return parts.join(' · ');
}

function notifRow(r) {
  const p = pointOf(r);
  const tr = el('tr', { data: { id: r.id, state: r.state } });
  tr.append(
    el('td', { className: 'id num' }, r.id),
    el('td', { className: 'created', title: r.created }, fmtTime(r.created)),
    el('td', { className: 'iccid' }, r.iccid),
    el('td', { className: 'point', data: { point: r.notificationPointId } },
      `${r.notificationPointId} ${p.label}`),
    el('td', { className: 'event', title: p.message }, p.event),
    el('td', { className: 'operator' }, r.operator),
    el('td', { className: `state ${r.state}` }, r.state),
    el('td', { className: 'attempts num' }, (r.attempts || []).length),
    el('td', { className: 'last-attempt', title: r.url }, lastAttempt(r)));
  if (notif.expanded.has(r.id)) tr.classList.add('open');
  return tr;
}

function notifDetail(r) {
  const attempts = (r.attempts || []).map((a, i) =>
    `#${i + 1} ${a.at} ${a.status || 'no answer'} ${a.latencyMs} ms${a.error ? ` ${a.error}` : ''}`);
  return detailRow(9, [
    ['URL', r.url],
    ['functionCallIdentifier', r.functionCallIdentifier],
    ['Reason', r.reason],
    ['Attempts', attempts.join('\n') + (attempts.length ? '\n' : '')],
    ['Body', r.body],
  ]);
}

function renderNotifications(recs) {
  notif.byId = new Map(recs.map((r) => [r.id, r]));
  const rows = [];
  for (const r of recs) {
    rows.push(notifRow(r));
    if (notif.expanded.has(r.id)) rows.push(notifDetail(r));
  }
  $('#notifications tbody').replaceChildren(...rows);
}

$('#notifications tbody').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-id]');
  if (!tr || isSelecting(tr)) return;
  const id = Number(tr.dataset.id);
  const next = tr.nextElementSibling;
  if (notif.expanded.delete(id)) {
    if (next && next.classList.contains('detail')) next.remove();
    tr.classList.remove('open');
  } else if (notif.byId.has(id)) {
    notif.expanded.add(id);
    tr.after(notifDetail(notif.byId.get(id)));
    tr.classList.add('open');
  }
});

// ---- the loop --------------------------------------------------------------------------

let refreshes = 0;
let wasDown = false;

async function refresh() {
  // After an outage the server may have restarted: start over (but keep the last data on
  // screen until the new data is in, so an outage can still be looked into).
  if (wasDown) notif.base = 0;
  // The summary first: the journal fetch needs its lastSeq.
  const summary = await getJSON('/admin/summary');
  const [journalData, notifications, report] = await Promise.all([
    fetchJournal(summary.journal || {}, wasDown),
    fetchNotifications((summary.notifications || {}).lastId),
    getJSON('/admin/conformance'),
  ]);
  // Everything fetched: render all at once, so one refresh never shows a half-updated page.
  renderCounters(summary);
  renderProfiles(summary.profiles);
  renderConformance(summary.conformance || report.summary, report);
  renderJournal(journalData);
  renderNotifications(notifications);
}

async function loop() {
  try {
    await refresh();
    wasDown = false;
    refreshes += 1;
    setStatus(true);
    const now = new Date();
    const t = $('#last-refresh');
    t.dateTime = now.toISOString();
    t.textContent = now.toLocaleTimeString([], { hour12: false });
    document.body.dataset.refreshes = String(refreshes);
  } catch (err) {
    wasDown = true;
    setStatus(false, String(err && err.message ? err.message : err));
  } finally {
    // Scheduled only after this refresh is done, so refreshes never overlap.
    setTimeout(loop, REFRESH_MS);
  }
}

loop();
