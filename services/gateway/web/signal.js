// signal.js: the browser SDK of the signaling cluster, protocol v1 (docs/protocol.md).
// A dependency-free ES module, served by every gateway at /sdk/signal.js.
//
// Three layers; use the ones you need:
//
//   SignalingClient  one WebSocket to a gateway: requests return promises (rejected
//                    with a SignalError carrying the server's error code), pushed
//                    messages are events, lost connections are re-established with
//                    backoff and the rooms joined again.
//   PeerLink         one RTCPeerConnection to one remote peer, negotiated with the W3C
//                    "perfect negotiation" pattern: roles decided from the peer ids,
//                    glare resolved by rollback, early ICE candidates buffered, ICE
//                    restarted when it fails.
//   MeshRoom         a room in which every member links to every other member.
//
// docs/sdk.md has a 1:1 call and a mesh room as examples.

export const PROTOCOL_VERSION = 1;

/** A failed request, with the server's stable error code (e.g. "room_full"). */
export class SignalError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SignalError';
    this.code = code;
  }
}

// Close codes after which trying again (on any gateway) makes sense. 4000 is the
// client's own "moving" close, after a `reconnect` instruction.
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4000, 4008, 4009]);

// Acknowledge received messages every this many, so the gateway can free them.
const ACK_EVERY = 16;

// How long the polite side of a new link waits for the impolite side's first offer
// before offering itself, and how long it leaves a failed ICE connection to the
// impolite side's restart. See PeerLink.
const POLITE_WAIT_MS = 2000;

/**
 * One connection to a gateway.
 *
 * Events (all CustomEvents; the message is in `event.detail`): `peer_joined`,
 * `peer_left`, `signal`, `broadcast`, `left` (removed by the server), `state` (detail:
 * the new state), `resumed` (detail: {gap, rooms} after a reconnect that kept the
 * session), `rejoined` (detail: {room, peers} after a reconnect that could not resume
 * and started a new session), `closed` (detail: {code, reason} when it gives up).
 *
 * A lost connection is resumed on the next one (any gateway, within the server's
 * resume window): same peer id, same rooms, and every message sent meanwhile delivered
 * in order, once; `gap: true` says some may have been lost.
 *
 * States: idle -> connecting -> open -> (reconnecting -> open)* -> closed.
 */
export class SignalingClient extends EventTarget {
  /**
   * @param {string} url  the gateway's WebSocket URL, e.g. `wss://signal.example.org/ws`
   * @param {object} [options]
   * @param {string} [options.token]  a token from the application's backend
   * @param {() => Promise<string>} [options.getToken]  called before every (re)connect
   * @param {boolean} [options.reconnect=true]
   * @param {number} [options.minBackoffMs=250]
   * @param {number} [options.maxBackoffMs=10000]
   * @param {number} [options.requestTimeoutMs=10000]
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {
      token: null,
      getToken: null,
      reconnect: true,
      minBackoffMs: 250,
      maxBackoffMs: 10000,
      requestTimeoutMs: 10000,
      ...options,
    };
    this.state = 'idle';
    this.welcome = null;
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map(); // request id -> {resolve, reject, timer}
    this._rooms = new Map(); // joined room -> metadata, to join again after a reconnect
    this._attempt = 0;
    this._closedByUser = false;
    // Resume state: the token from `welcome`/`resumed`, the last `seq` received.
    this._resumeToken = null;
    this._lastSeq = 0;
    this._ackedSeq = 0;
    // A page going away says goodbye, so its rooms see it leave at once instead of
    // after the resume window.
    globalThis.addEventListener?.('pagehide', () => this.close());
  }

  /** This client's peer id, assigned by the server (changes on reconnect). */
  get peerId() {
    return this.welcome ? this.welcome.peer_id : null;
  }

  /** STUN/TURN servers from the server, ready for `new RTCPeerConnection`. */
  get iceServers() {
    return this.welcome ? this.welcome.ice_servers : [];
  }

  /** Connects and resolves with the `welcome` message. */
  async connect() {
    this._closedByUser = false;
    this._setState('connecting');
    try {
      return await this._open();
    } catch (error) {
      this._setState('closed');
      throw error;
    }
  }

  /** Joins a room; resolves with the members already there. */
  async join(room, metadata = undefined) {
    const reply = await this._request({ type: 'join', room, metadata });
    this._rooms.set(room, metadata);
    return reply.peers;
  }

  async leave(room) {
    this._rooms.delete(room);
    await this._request({ type: 'leave', room });
  }

  /**
   * Sends a signal to one peer of a room. Fire-and-forget unless `ack` is set, in
   * which case it resolves once the gateway accepted it for delivery.
   */
  signal(room, to, kind, data = null, { ack = false } = {}) {
    const request = { type: 'signal', room, to, kind, data };
    if (ack) return this._request(request);
    this._send(request);
    return undefined;
  }

  /** Sends app data to every other member of a room. */
  broadcast(room, data, { ack = false } = {}) {
    const request = { type: 'broadcast', room, data };
    if (ack) return this._request(request);
    this._send(request);
    return undefined;
  }

  async ping() {
    await this._request({ type: 'ping' });
  }

  /** Closes for good (no reconnect). */
  close() {
    this._closedByUser = true;
    if (this._ws) this._ws.close(1000, 'bye');
    this._setState('closed');
  }

  /** Opens a socket; with `resume`, asks to resume the session. Resolves with the
   * first message: `welcome` (a new session) or `resumed`. */
  _open(resume = false) {
    return new Promise((resolve, reject) => {
      (async () => {
        const token = this.options.getToken ? await this.options.getToken() : this.options.token;
        const url = new URL(this.url, globalThis.location ? globalThis.location.href : undefined);
        if (token) url.searchParams.set('token', token);
        if (resume && this._resumeToken) {
          url.searchParams.set('resume', this._resumeToken);
          url.searchParams.set('last_seq', String(this._lastSeq));
        }
        const ws = new WebSocket(url);
        this._ws = ws;
        let welcomed = false;
        let refusal = null; // an `error` received before `welcome` (e.g. unauthorized)
        ws.onmessage = (event) => {
          let message;
          try {
            message = JSON.parse(event.data);
          } catch {
            return;
          }
          if (!welcomed && (message.type === 'welcome' || message.type === 'resumed')) {
            welcomed = true;
            this.welcome = message;
            this._resumeToken = message.resume_token || null;
            if (message.type === 'welcome') this._lastSeq = this._ackedSeq = 0;
            this._attempt = 0;
            this._setState('open');
            resolve(message);
            return;
          }
          if (!welcomed && message.type === 'error') refusal = message;
          if (message.seq !== undefined) this._received(message.seq);
          if (message.type === 'reconnect') {
            // The gateway drains: move now; the session resumes on the next connection.
            // A ping first: requests are handled in order, so once its pong is back
            // everything sent on this connection has been handled, and nothing sent is
            // left behind when the session moves.
            this._request({ type: 'ping' })
              .catch(() => {})
              .finally(() => ws.close(4000, 'reconnecting'));
            return;
          }
          this._dispatch(message);
        };
        ws.onclose = (event) => {
          if (this._ws === ws) this._ws = null;
          this._failPending('unavailable', 'the connection closed');
          if (!welcomed) {
            const code = refusal ? refusal.code : 'unavailable';
            const message = refusal ? refusal.message : `connection closed (${event.code} ${event.reason})`;
            reject(new SignalError(code, message));
            return;
          }
          this._onClose(event);
        };
      })().catch(reject);
    });
  }

  _onClose(event) {
    if (this._closedByUser) return;
    const retry = this.options.reconnect && (RECONNECT_CODES.has(event.code) || event.code === 1005);
    // Moving at the gateway's request: no need to wait before the first attempt.
    if (event.code === 4000) this._attempt = 0;
    if (!retry) {
      this._setState('closed');
      this._emit('closed', { code: event.code, reason: event.reason });
      return;
    }
    this._setState('reconnecting');
    this._reconnect();
  }

  _received(seq) {
    this._lastSeq = seq;
    if (seq - this._ackedSeq >= ACK_EVERY && this._ws && this._ws.readyState === WebSocket.OPEN) {
      this._ackedSeq = seq;
      this._ws.send(JSON.stringify({ type: 'received', seq }));
    }
  }

  async _reconnect() {
    while (!this._closedByUser) {
      const base = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** this._attempt);
      this._attempt += 1;
      // Full jitter, so that the clients of a drained gateway do not return in lockstep.
      await new Promise((done) => setTimeout(done, base / 2 + Math.random() * (base / 2)));
      if (this._closedByUser) return;
      let first;
      try {
        first = await this._open(true);
      } catch (error) {
        if (error.code === 'unauthorized' && !this.options.getToken) {
          this._setState('closed');
          this._emit('closed', { code: 4001, reason: error.message });
          return;
        }
        continue;
      }
      if (first.type === 'resumed') {
        // Same peer id, same rooms; what was sent meanwhile follows.
        this._emit('resumed', { gap: first.gap, rooms: first.rooms });
        return;
      }
      // The session could not be resumed: a new peer id, so every room is joined again.
      for (const [room, metadata] of [...this._rooms]) {
        try {
          const joined = await this._request({ type: 'join', room, metadata });
          this._emit('rejoined', { room, peers: joined.peers });
        } catch (error) {
          this._rooms.delete(room);
          this._emit('left', { type: 'left', room, reason: 'rejoin_failed', error });
        }
      }
      return;
    }
  }

  _dispatch(message) {
    const id = message.id === undefined ? undefined : message.id;
    if (id !== undefined && this._pending.has(id)) {
      const { resolve, reject, timer } = this._pending.get(id);
      this._pending.delete(id);
      clearTimeout(timer);
      if (message.type === 'error') reject(new SignalError(message.code, message.message));
      else resolve(message);
      return;
    }
    if (message.type === 'left') this._rooms.delete(message.room);
    this._emit(message.type, message);
  }

  _request(request) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
        reject(new SignalError('unavailable', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new SignalError('unavailable', `no reply to ${request.type} within ${this.options.requestTimeoutMs} ms`));
      }, this.options.requestTimeoutMs);
      this._pending.set(id, { resolve, reject, timer });
      this._ws.send(JSON.stringify({ ...request, id }));
    });
  }

  _send(request) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
      throw new SignalError('unavailable', 'not connected');
    }
    this._ws.send(JSON.stringify(request));
  }

  _failPending(code, message) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(new SignalError(code, message));
    }
    this._pending.clear();
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * One RTCPeerConnection to one remote peer of a room, kept negotiated over the
 * client's signals with the W3C "perfect negotiation" pattern.
 *
 * Events: `state` (detail: connectionState), `track` (detail: {track, streams}),
 * `message` (detail: {label, data}), `channel` (detail: {label, open}), `closed`.
 */
export class PeerLink extends EventTarget {
  /**
   * @param {SignalingClient} client
   * @param {string} room
   * @param {{peer_id: string, identity?: string, name?: string}} remote
   * @param {object} [options]
   * @param {MediaStream} [options.localStream]  tracks to send
   * @param {string[]} [options.dataChannels]  labels of DataChannels to open (negotiated,
   *   so both sides create them with the same ids and no extra round trip)
   * @param {RTCConfiguration} [options.rtcConfig]  merged over {iceServers}
   */
  constructor(client, room, remote, { localStream = null, dataChannels = [], rtcConfig = {} } = {}) {
    super();
    this.client = client;
    this.room = room;
    this.remote = remote;
    this.peerId = remote.peer_id;
    // Both sides compute the same answer from the two ids: exactly one is polite.
    this.polite = client.peerId < remote.peer_id;
    this.pc = new RTCPeerConnection({ iceServers: client.iceServers, ...rtcConfig });
    this.channels = new Map();
    this.closed = false;
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._settingRemoteAnswer = false;
    this._earlyCandidates = [];
    this._incoming = Promise.resolve(); // signals are applied one at a time, in order
    // Counters for debugging a negotiation: signals sent and received by kind, offers
    // ignored in glare, candidates buffered, added and refused.
    // connectedAfterMs: from this link's creation to its first `connected`.
    this.stats = {
      sent: {},
      received: {},
      ignoredOffers: 0,
      earlyCandidates: 0,
      candidatesAdded: 0,
      candidatesFailed: 0,
      connectedAfterMs: null,
    };
    this._createdAt = performance.now();

    // Both sides of a new link want to negotiate at once (each adds its tracks). Perfect
    // negotiation resolves that glare, but Chromium then leaves the polite side's ICE
    // gathering stuck after the rollback (no candidate is ever emitted for its answer),
    // so the first offer is left to the impolite side: the polite side holds its own
    // until that offer arrives, or for POLITE_WAIT_MS if none comes. Its tracks join the
    // answer; later renegotiations are ordinary perfect negotiation.
    this._awaitingFirstOffer = this.polite
      ? setTimeout(() => this._stopAwaitingFirstOffer(), POLITE_WAIT_MS)
      : null;
    this._heldNegotiation = false;

    dataChannels.forEach((label, id) => this._addChannel(this.pc.createDataChannel(label, { negotiated: true, id })));
    if (localStream) {
      for (const track of localStream.getTracks()) this.pc.addTrack(track, localStream);
    }
    this.pc.onnegotiationneeded = () => {
      if (this._awaitingFirstOffer) this._heldNegotiation = true;
      else this._offer();
    };
    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate) this._signal('candidate', candidate.toJSON());
      else this._signal('end_of_candidates', null);
    };
    // An ICE restart renegotiates; if both sides started one at once they would meet in
    // glare, so the polite side leaves it to the impolite one for a while.
    this.pc.oniceconnectionstatechange = () => {
      if (this.pc.iceConnectionState !== 'failed') return;
      if (!this.polite) this.pc.restartIce();
      else setTimeout(() => this.pc.iceConnectionState === 'failed' && !this.closed && this.pc.restartIce(), POLITE_WAIT_MS);
    };
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === 'connected' && this.stats.connectedAfterMs === null) {
        this.stats.connectedAfterMs = Math.round(performance.now() - this._createdAt);
      }
      this._emit('state', this.pc.connectionState);
    };
    this.pc.ontrack = ({ track, streams }) => this._emit('track', { track, streams });
  }

  get connectionState() {
    return this.pc.connectionState;
  }

  /** Applies a signal from the remote peer (kinds: offer, answer, candidate, end_of_candidates). */
  handleSignal(kind, data) {
    this._incoming = this._incoming
      .then(() => this._apply(kind, data))
      .catch((error) => console.warn(`signal.js: ${kind} from ${this.peerId}:`, error));
    return this._incoming;
  }

  /** Sends text on an open DataChannel; returns false if it is not open. */
  send(label, data) {
    const channel = this.channels.get(label);
    if (!channel || channel.readyState !== 'open') return false;
    channel.send(data);
    return true;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._awaitingFirstOffer);
    for (const channel of this.channels.values()) channel.close();
    this.pc.close();
    this._emit('closed', null);
  }

  _stopAwaitingFirstOffer() {
    clearTimeout(this._awaitingFirstOffer);
    this._awaitingFirstOffer = null;
    if (this._heldNegotiation && !this.closed) {
      this._heldNegotiation = false;
      // Still needed only if the remote offer did not cover it (nothing has been
      // negotiated yet, or this side has something the offer lacked); browsers fire
      // negotiationneeded again after the answer in the latter case.
      if (this.pc.signalingState === 'stable' && !this.pc.remoteDescription) this._offer();
    }
  }

  async _offer() {
    try {
      this._makingOffer = true;
      await this.pc.setLocalDescription();
      this._signal(this.pc.localDescription.type, this.pc.localDescription.toJSON());
    } catch (error) {
      console.warn(`signal.js: offer to ${this.peerId}:`, error);
    } finally {
      this._makingOffer = false;
    }
  }

  async _apply(kind, data) {
    if (this.closed) return;
    this.stats.received[kind] = (this.stats.received[kind] || 0) + 1;
    if (kind === 'offer' || kind === 'answer') {
      const description = { type: kind, sdp: data.sdp };
      const readyForOffer = !this._makingOffer && (this.pc.signalingState === 'stable' || this._settingRemoteAnswer);
      const collision = description.type === 'offer' && !readyForOffer;
      // Glare: the impolite side ignores the other's offer; the polite side's
      // setRemoteDescription rolls its own offer back implicitly.
      this._ignoreOffer = !this.polite && collision;
      if (this._ignoreOffer) {
        this.stats.ignoredOffers += 1;
        return;
      }
      this._settingRemoteAnswer = description.type === 'answer';
      await this.pc.setRemoteDescription(description);
      this._settingRemoteAnswer = false;
      if (description.type === 'offer' && this._awaitingFirstOffer) this._stopAwaitingFirstOffer();
      await this._addEarlyCandidates();
      if (description.type === 'offer') {
        await this.pc.setLocalDescription();
        this._signal(this.pc.localDescription.type, this.pc.localDescription.toJSON());
      }
    } else if (kind === 'candidate' || kind === 'end_of_candidates') {
      const candidate = kind === 'candidate' ? data : null;
      // A candidate can overtake the description it belongs to; keep it until then.
      if (!this.pc.remoteDescription) {
        this._earlyCandidates.push(candidate);
        this.stats.earlyCandidates += 1;
        return;
      }
      await this._addCandidate(candidate);
    }
  }

  async _addEarlyCandidates() {
    const early = this._earlyCandidates;
    this._earlyCandidates = [];
    // One refused candidate (say, of a description that was rolled back) must not cost
    // the others.
    for (const candidate of early) {
      await this._addCandidate(candidate).catch((error) => console.warn(`signal.js: early candidate:`, error));
    }
  }

  async _addCandidate(candidate) {
    try {
      if (candidate) await this.pc.addIceCandidate(candidate);
      else await this.pc.addIceCandidate();
      this.stats.candidatesAdded += 1;
    } catch (error) {
      this.stats.candidatesFailed += 1;
      // Candidates of an offer this side ignored (glare) are expected to fail.
      if (!this._ignoreOffer) throw error;
    }
  }

  _addChannel(channel) {
    this.channels.set(channel.label, channel);
    channel.onopen = () => this._emit('channel', { label: channel.label, open: true });
    channel.onclose = () => this._emit('channel', { label: channel.label, open: false });
    channel.onmessage = (event) => this._emit('message', { label: channel.label, data: event.data });
  }

  _signal(kind, data) {
    if (this.closed) return;
    this.stats.sent[kind] = (this.stats.sent[kind] || 0) + 1;
    try {
      this.client.signal(this.room, this.peerId, kind, data);
    } catch (error) {
      // Disconnected: the reconnect rebuilds the links anyway.
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * A mesh room: one PeerLink to every other member, created and torn down as members
 * come and go.
 *
 * Events: `peer` (detail: the new PeerLink), `peer_left` (detail: {peerId, reason}),
 * `track` (detail: {peerId, track, streams}), `message` (detail: {peerId, label,
 * data}), `change` (anything changed: membership, a connection or channel state),
 * `left` (detail: {reason}; the room was left or this peer removed).
 *
 * A resumed connection keeps every link (media flows peer to peer, the signaling
 * connection only carried the negotiation); a new session after a failed resume
 * rebuilds them.
 */
export class MeshRoom extends EventTarget {
  /**
   * @param {SignalingClient} client  a connected client
   * @param {string} room
   * @param {object} [options]  passed to every PeerLink: localStream, dataChannels, rtcConfig
   */
  constructor(client, room, options = {}) {
    super();
    this.client = client;
    this.room = room;
    this.options = options;
    this.links = new Map(); // peer id -> PeerLink
    this.joined = false;
    this._listeners = {
      peer_joined: ({ detail }) => detail.room === room && this._link(detail.peer),
      peer_left: ({ detail }) => detail.room === room && this._unlink(detail.peer_id, detail.reason),
      signal: ({ detail }) => this._onSignal(detail),
      left: ({ detail }) => detail.room === room && this._end(detail.reason),
      rejoined: ({ detail }) => detail.room === room && this._rebuild(detail.peers),
      resumed: ({ detail }) => this._onResumed(detail),
      state: () => this._emit('change', null),
    };
    for (const [type, listener] of Object.entries(this._listeners)) client.addEventListener(type, listener);
  }

  /** Joins the room and links to everyone already there. */
  async join(metadata = undefined) {
    const peers = await this.client.join(this.room, metadata);
    this.joined = true;
    for (const peer of peers) this._link(peer);
    this._emit('change', null);
    return peers;
  }

  /** Leaves the room and closes every link. */
  async leave() {
    try {
      await this.client.leave(this.room);
    } finally {
      this._end('left');
    }
  }

  /** Sends text to every peer on the DataChannel `label`; returns how many got it. */
  send(label, data) {
    let sent = 0;
    for (const link of this.links.values()) if (link.send(label, data)) sent += 1;
    return sent;
  }

  _onSignal(message) {
    if (message.room !== this.room || !this.joined) return;
    // The server announces every peer before its first signal; a link is made here too
    // only to be safe against out-of-spec servers.
    const link = this.links.get(message.from) || this._link({ peer_id: message.from });
    link.handleSignal(message.kind, message.data);
  }

  _link(peer) {
    if (this.links.has(peer.peer_id)) return this.links.get(peer.peer_id);
    const link = new PeerLink(this.client, this.room, peer, this.options);
    this.links.set(peer.peer_id, link);
    link.addEventListener('state', () => this._emit('change', null));
    link.addEventListener('channel', () => this._emit('change', null));
    link.addEventListener('track', ({ detail }) => this._emit('track', { peerId: peer.peer_id, ...detail }));
    link.addEventListener('message', ({ detail }) => {
      this._emit('message', { peerId: peer.peer_id, ...detail });
    });
    this._emit('peer', link);
    this._emit('change', null);
    return link;
  }

  _unlink(peerId, reason) {
    const link = this.links.get(peerId);
    if (!link) return;
    this.links.delete(peerId);
    link.close();
    this._emit('peer_left', { peerId, reason });
    this._emit('change', null);
  }

  /** After a resume the links simply go on; if messages may have been lost (a gap),
   * each link restarts ICE so that a lost candidate or description cannot leave it
   * stuck (the impolite side starts, as for any restart). */
  _onResumed({ gap, rooms }) {
    if (!rooms.includes(this.room)) {
      this._end('disconnected');
      return;
    }
    if (gap) {
      for (const link of this.links.values()) if (!link.polite) link.pc.restartIce();
    }
    this._emit('change', null);
  }

  _rebuild(peers) {
    for (const peerId of [...this.links.keys()]) this._unlink(peerId, 'reconnected');
    for (const peer of peers) this._link(peer);
  }

  _end(reason) {
    if (!this.joined && this.links.size === 0) return;
    this.joined = false;
    for (const peerId of [...this.links.keys()]) this._unlink(peerId, reason);
    for (const [type, listener] of Object.entries(this._listeners)) this.client.removeEventListener(type, listener);
    this._emit('left', { reason });
    this._emit('change', null);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
