// The playground page: upload an image, collect click/drag prompts on it, ask questions and render the streamed reply.
// Plain browser JavaScript on purpose (no build step); every value from the server is inserted as text, never as HTML.

const $ = (id) => document.getElementById(id);
const els = {
  input: $('image-input'), hint: $('hint'), stage: $('stage'), photo: $('photo'), overlay: $('overlay'), marks: $('marks'),
  promptBar: $('prompt-bar'), promptList: $('prompt-list'), clearPrompts: $('clear-prompts'), showOverlay: $('show-overlay'),
  turns: $('turns'), status: $('status'), form: $('ask-form'), question: $('question'), askButton: $('ask-button'),
};
const SVG_NS = 'http://www.w3.org/2000/svg';
const GROUNDING_TAGS = /<\/?p>|\[SEG\]/g;
const DRAG_THRESHOLD_PX = 5; // a press that moves less than this (on screen) is a click, i.e. a point prompt

const state = { conversationId: null, width: 0, height: 0, prompts: [], busy: false, dragStart: null };

// ---- upload ----

els.input.addEventListener('change', async () => {
  const file = els.input.files && els.input.files[0];
  els.input.value = ''; // choosing the same file again must start a new conversation too
  if (!file) return;
  setStatus('Uploading…');
  const form = new FormData();
  form.append('image', file, file.name);
  try {
    const res = await fetch('/api/conversations', { method: 'POST', body: form });
    const body = await res.json();
    if (!res.ok) return setStatus(errorText(body));
    await startConversation(body);
  } catch (err) {
    setStatus(`The upload failed: ${err.message}`);
  }
});

async function startConversation(body) {
  state.conversationId = body.id;
  state.width = body.width;
  state.height = body.height;
  state.prompts = [];
  els.photo.src = `/api/conversations/${encodeURIComponent(body.id)}/image`;
  await els.photo.decode(); // clicks map through the photo's size, so it must be there first
  els.overlay.hidden = true;
  els.overlay.removeAttribute('src');
  els.marks.setAttribute('viewBox', `0 0 ${body.width} ${body.height}`);
  els.marks.setAttribute('preserveAspectRatio', 'none');
  els.turns.replaceChildren();
  els.stage.hidden = false;
  els.promptBar.hidden = false;
  els.hint.hidden = true;
  setBusy(false);
  renderPrompts();
  setStatus(`Image ready (${body.width}×${body.height}).`);
  els.question.focus();
}

// ---- visual prompts: click = point, drag = box, in original image pixels ----

function imagePoint(event) {
  const rect = els.photo.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * state.width;
  const y = ((event.clientY - rect.top) / rect.height) * state.height;
  return { x: clamp(x, 0, state.width), y: clamp(y, 0, state.height), screenX: event.clientX, screenY: event.clientY };
}

els.stage.addEventListener('pointerdown', (event) => {
  if (!state.conversationId || event.button !== 0) return;
  event.preventDefault();
  els.stage.setPointerCapture(event.pointerId);
  state.dragStart = imagePoint(event);
});

els.stage.addEventListener('pointermove', (event) => {
  if (!state.dragStart) return;
  renderPrompts(boxBetween(state.dragStart, imagePoint(event)));
});

els.stage.addEventListener('pointerup', (event) => {
  const start = state.dragStart;
  if (!start) return;
  state.dragStart = null;
  const end = imagePoint(event);
  const moved = Math.hypot(end.screenX - start.screenX, end.screenY - start.screenY);
  if (moved < DRAG_THRESHOLD_PX) {
    // Points name a pixel, so they must stay inside the image.
    state.prompts.push({ kind: 'point', x: Math.min(Math.floor(start.x), state.width - 1), y: Math.min(Math.floor(start.y), state.height - 1) });
  } else {
    state.prompts.push(boxBetween(start, end));
  }
  renderPrompts();
});

function boxBetween(a, b) {
  return {
    kind: 'box',
    x1: Math.floor(Math.min(a.x, b.x)), y1: Math.floor(Math.min(a.y, b.y)),
    x2: Math.ceil(Math.max(a.x, b.x)), y2: Math.ceil(Math.max(a.y, b.y)),
  };
}

els.clearPrompts.addEventListener('click', () => {
  state.prompts = [];
  renderPrompts();
});

els.showOverlay.addEventListener('change', () => {
  els.overlay.hidden = !els.showOverlay.checked || !els.overlay.getAttribute('src');
});

function renderPrompts(pending) {
  const stroke = Math.max(2, Math.round(Math.max(state.width, state.height) / 300));
  const shapes = [];
  const all = pending ? [...state.prompts, pending] : state.prompts;
  all.forEach((p, i) => {
    if (p.kind === 'point') {
      shapes.push(svg('circle', { cx: p.x + 0.5, cy: p.y + 0.5, r: stroke * 3, fill: '#ffd400', stroke: '#000', 'stroke-width': stroke / 2 }));
    } else {
      shapes.push(svg('rect', { x: p.x1, y: p.y1, width: p.x2 - p.x1, height: p.y2 - p.y1, fill: 'none', stroke: '#ffd400', 'stroke-width': stroke }));
    }
    const label = svg('text', { x: (p.kind === 'point' ? p.x : p.x1) + stroke * 4, y: (p.kind === 'point' ? p.y : p.y1) + stroke * 8, fill: '#ffd400', stroke: '#000', 'stroke-width': stroke / 3, 'font-size': stroke * 8, 'font-weight': 'bold' });
    label.textContent = String(i + 1);
    shapes.push(label);
  });
  els.marks.replaceChildren(...shapes);
  els.promptList.replaceChildren(...state.prompts.map((p, i) => chip(`${i + 1}: ${describePrompt(p)}`)));
  if (state.prompts.length === 0) els.promptList.replaceChildren(document.createTextNode('No visual prompts.'));
}

function describePrompt(p) {
  return p.kind === 'point' ? `point (${p.x}, ${p.y})` : `box ${p.x1},${p.y1},${p.x2},${p.y2}`;
}

// ---- asking: the reply streams as newline-delimited JSON progress events ----

els.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = els.question.value.trim();
  // With prompts and no text the server describes the marked place.
  if ((!text && state.prompts.length === 0) || state.busy || !state.conversationId) return;
  const prompts = state.prompts;
  const turn = addTurn(text, prompts);
  els.question.value = '';
  state.prompts = [];
  renderPrompts();
  setBusy(true);
  turn.startedAt = performance.now();
  try {
    await ask(text, prompts, turn);
  } catch (err) {
    showFailure(turn, `The connection failed: ${err.message}`);
  } finally {
    setBusy(false);
  }
});

async function ask(text, prompts, turn) {
  const res = await fetch(`/api/conversations/${encodeURIComponent(state.conversationId)}/ask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ text, prompts }),
  });
  if (!res.ok || !res.body) {
    const body = await res.json().catch(() => ({}));
    return showFailure(turn, errorText(body));
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onEvent(JSON.parse(line), turn);
    }
  }
}

function onEvent(event, turn) {
  switch (event.type) {
    case 'queued':
      return setStatus(event.position > 0 ? `Queued: ${event.position} ahead of you.` : 'Queued: next.');
    case 'started':
      return setStatus('Thinking…');
    case 'text':
      // Streamed deltas are raw model text; the grounding tags only make sense once the reply pairs them with masks.
      turn.answer.append(document.createTextNode(event.delta.replace(GROUNDING_TAGS, '')));
      return;
    case 'reply':
      return showReply(turn, event.reply);
    case 'error':
      return showFailure(turn, errorText(event));
    case 'cancelled':
      return showFailure(turn, 'Cancelled.');
  }
}

// ---- rendering a turn ----

function addTurn(text, prompts) {
  const li = document.createElement('li');
  const question = document.createElement('div');
  question.className = 'question';
  question.textContent = text || '(describe)';
  if (prompts.length) question.append(' ', ...prompts.map((p, i) => chip(`${i + 1}: ${describePrompt(p)}`)));
  const answer = document.createElement('div');
  answer.className = 'answer';
  li.append(question, answer);
  els.turns.append(li);
  li.scrollIntoView({ block: 'end' });
  return { li, answer };
}

function showReply(turn, reply) {
  turn.answer.replaceChildren(...colouredText(reply.text, reply.segments));
  turn.answer.dataset.done = 'true';
  if (reply.segments.length) {
    const list = document.createElement('ul');
    list.className = 'segments';
    for (const s of reply.segments) {
      const li = document.createElement('li');
      const name = `#${s.n} ${s.phrase || '(no phrase)'}`;
      if (s.area === 0) {
        li.append(`${name}: not found in the image`);
      } else {
        const mask = document.createElement('a');
        mask.href = s.maskUrl;
        mask.target = '_blank';
        mask.textContent = 'mask';
        li.append(swatch(s.colour), `${name}: ${s.area} px, score ${s.score.toFixed(2)}, bbox ${s.bbox.join(',')} `, mask);
      }
      list.append(li);
    }
    turn.li.append(list);
  }
  if (reply.overlayUrl) {
    els.overlay.src = reply.overlayUrl;
    els.overlay.hidden = !els.showOverlay.checked;
  }
  setStatus(`Answered in ${((performance.now() - turn.startedAt) / 1000).toFixed(1)} s.`);
}

// Each grounded phrase is shown in its mask's colour; the spans are character offsets into the reply text.
function colouredText(text, segments) {
  const spans = segments.filter((s) => s.span).sort((a, b) => a.span[0] - b.span[0]);
  const nodes = [];
  let at = 0;
  for (const s of spans) {
    const [start, end] = s.span;
    if (start < at) continue;
    nodes.push(document.createTextNode(text.slice(at, start)));
    const span = document.createElement('span');
    span.className = 'phrase';
    span.dataset.n = String(s.n);
    if (s.area === 0) { // an empty mask has no colour in the overlay
      span.title = `#${s.n}: not found in the image`;
      span.append(text.slice(start, end), ` (#${s.n}: not found)`);
    } else {
      span.title = `#${s.n} ${s.colour.name}`;
      span.style.background = `${s.colour.hex}40`;
      span.style.borderBottom = `3px solid ${s.colour.hex}`;
      span.append(swatch(s.colour), text.slice(start, end));
    }
    nodes.push(span);
    at = end;
  }
  nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

function showFailure(turn, message) {
  turn.answer.classList.add('failed');
  turn.answer.textContent = message;
  setStatus('');
}

// ---- small helpers ----

function swatch(colour) {
  const s = document.createElement('span');
  s.className = 'swatch';
  s.style.background = colour.hex;
  return s;
}

function chip(text) {
  const c = document.createElement('span');
  c.className = 'prompt-chip';
  c.textContent = text;
  return c;
}

function svg(name, attrs) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function errorText(body) {
  return (body && body.error && body.error.message) || 'The request failed.';
}

function setStatus(text) {
  els.status.textContent = text;
}

function setBusy(busy) {
  state.busy = busy;
  els.question.disabled = busy || !state.conversationId;
  els.askButton.disabled = busy || !state.conversationId;
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}
