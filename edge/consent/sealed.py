"""Sealed templates: token-mode enrolment, where only the traveller holds the template's key.

The EDPB's preferred design for boarding by face (Opinion 11/2024, the "passenger-held key"
scenario): the template is kept by the operator but encrypted with a key that only the
passenger has. At enrolment a fresh random 256-bit key seals the template with AES-256-GCM
(associated data: the consent id, the consent's scope and the template's expiry, so a template
cannot be moved to another consent, flight or retention by editing the store); the store keeps
the sealed bytes in the `templates` table (`sealed = 1`, migration 4), inside SQLCipher, and the
key leaves in the traveller's token (edge.consent.token_format) without ever being written
here. The gallery never loads a sealed row (`ConsentStore._template_rows` skips them), so the
box cannot search for, or match, a token-mode traveller at all until they show their token.

At the gate `open()` checks the token's consent (withdrawn, boarded, expired, another flight)
*before* it decrypts anything, then unseals that one template straight into a buffer that
`Unsealed.wipe()` zeroes; `verify()` is the 1:1 comparison at the 1:1 operating point.
Withdrawal, boarding, purge and replacement delete sealed rows exactly as they delete gallery
templates (same table, same transactions, `secure_delete`, WAL scrub).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.consent import retention
from edge.consent.errors import ConsentRequiredError, InvalidEmbeddingError
from edge.consent.gallery import NO_RUNNER_UP, MatchResult
from edge.consent.records import Enrolment, bounded_text
from edge.consent.replace import open_enrolment
from edge.consent.store import ConsentStore
from edge.consent.templates import templates_from
from edge.consent.token_format import PassengerKey, TokenError, parse_token
from foundation.clock import Clock

log = structlog.get_logger(__name__)

AAD_LABEL = b"consentgate/sealed-template/v1"
NONCE_BYTES = 12
TAG_BYTES = 16

# what the lane says for each refusal (staff read it on the board; no identity in any of them)
REFUSALS = {
    "token_invalid": "not a boarding key of this gate (damaged or altered): staffed lane",
    "token_unknown": "no enrolment for this boarding key (expired and removed, or made "
                     "elsewhere): staffed lane",
    "token_withdrawn": "the enrolment of this boarding key was withdrawn: staffed lane",
    "token_used": "this boarding key was already used to board: staffed lane",
    "token_expired": "the enrolment of this boarding key has expired: staffed lane",
    "token_tampered": "the boarding key does not open its template (altered key or store): "
                      "staffed lane",
    "wrong_flight": "the boarding key is for another flight or day: staffed lane",
    "token_unavailable": "the consent store could not be read for this key: staffed lane; "
                         "call an engineer",
}


def associated_data(consent_id: str, scope: str, expires_at: float) -> bytes:
    """What a sealed template is bound to (authenticated, not encrypted)."""
    return b"\x00".join((AAD_LABEL, consent_id.encode("ascii"), scope.encode("utf-8"),
                         float(expires_at).hex().encode("ascii")))


def seal(vector: np.ndarray, key: bytearray, aad: bytes) -> bytes:
    """nonce || AES-256-GCM(key, float32 little-endian vector, aad) || tag."""
    plain = np.ascontiguousarray(vector, dtype="<f4")
    nonce = secrets.token_bytes(NONCE_BYTES)
    try:
        return nonce + AESGCM(key).encrypt(nonce, plain.data.cast("B"), aad)
    finally:
        if plain is not vector:
            plain.fill(0.0)


def unseal(blob: bytes, key: bytearray, aad: bytes, dim: int) -> np.ndarray:
    """The vector sealed in `blob`, decrypted straight into a fresh float32 buffer (the
    caller zeroes it); TokenError `token_tampered` when the key or the bytes are not the ones
    sealed together."""
    out = np.zeros(int(dim), dtype="<f4")
    if len(blob) != NONCE_BYTES + out.nbytes + TAG_BYTES:
        raise TokenError("token_tampered", REFUSALS["token_tampered"])
    try:
        AESGCM(key).decrypt_into(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad,
                                        out.data.cast("B"))
    except (InvalidTag, ValueError):
        out.fill(0.0)
        raise TokenError("token_tampered", REFUSALS["token_tampered"]) from None
    return out


@dataclass
class Unsealed:
    """One traveller's template, unsealed in memory for one gate decision."""

    consent_id: str
    vector: np.ndarray = field(repr=False)  # unit length float32
    expires_at: float

    def verify(self, probe: np.ndarray, threshold: float, now: float) -> MatchResult:
        """1:1: the probe against this template at `threshold` (the 1:1 operating point).
        `candidate` is always this consent (there is no other), so multi-frame evidence agrees
        with itself; an expired template never matches."""
        if not retention.is_live(self.expires_at, now) or not np.any(self.vector):
            return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty", threshold)
        vec = np.asarray(probe, np.float32).ravel()
        norm = float(np.linalg.norm(vec))
        if vec.shape != self.vector.shape or not math.isfinite(norm) or norm < 1e-6:
            raise InvalidEmbeddingError("the probe does not fit the unsealed template")
        score = float(self.vector @ vec) / norm
        if score < threshold:
            return MatchResult(None, score, NO_RUNNER_UP, "below_threshold", threshold,
                               self.consent_id)
        return MatchResult(self.consent_id, score, NO_RUNNER_UP, "match", threshold,
                           self.consent_id)

    def wipe(self) -> None:
        self.vector.fill(0.0)


class SealedTemplates:
    """Token-mode enrolment and unsealing on one ConsentStore (shares its transactions, audit
    log and change log)."""

    def __init__(self, store: ConsentStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def enrol(self, consent_id: str, embeddings: Sequence[np.ndarray], model_name: str,
              actor: str) -> tuple[Enrolment, PassengerKey]:
        """Seal one template (the re-normalised mean of 1-10 embeddings) under a fresh key in
        one transaction, replacing the consent's earlier templates and an earlier live consent
        of the same reference and scope (as `ConsentStore.enrol`). Returns the enrolment and
        the key: show `key.token()` on the receipt, then `key.wipe()`; nothing else keeps it."""
        store = self._store
        vectors = templates_from(embeddings, "mean")
        model_name = bounded_text(model_name, "model name", 64)
        actor = bounded_text(actor, "actor", 64)
        now = self._clock.now()
        try:
            key = PassengerKey.new(str(consent_id))
        except ValueError:
            raise ConsentRequiredError("no live consent for this enrolment: record the "
                                       "traveller's consent first") from None
        try:
            with store.db.write() as conn:
                slot = open_enrolment(conn, store.audit_log, key.consent_id,
                                      int(vectors.shape[1]), now, actor)
                replaced, earlier = slot.replaced, slot.earlier
                expires = retention.template_expiry(now, slot.consent_expires_at,
                                                    store.max_retention_s)
                blob = seal(vectors[0], key.key, associated_data(key.consent_id, slot.scope,
                                                                 expires))
                cur = conn.execute("INSERT INTO templates (consent_id, model_name, dim, "
                                   "created_at, expires_at, embedding, sealed) "
                                   "VALUES (?, ?, ?, ?, ?, ?, 1)",
                                   (key.consent_id, model_name, int(vectors.shape[1]), now,
                                    expires, blob))
                template_id = int(cur.lastrowid)
                store.audit_log.record_in(conn, "enrolled", actor, key.consent_id,
                                          f"templates=1 replaced={len(replaced)} sealed=1")
        except BaseException:
            key.wipe()
            raise
        finally:
            vectors.fill(0.0)
        store.changes.record((), (*replaced, *earlier))  # nothing new for the gallery
        if replaced or earlier:
            store.db.scrub_wal("replacement")
        log.info("enrolled_sealed", consent_id=key.consent_id, replaced=len(replaced))
        return Enrolment(key.consent_id, (template_id,), expires), key

    def open(self, token: str, scopes: Collection[str] | None = None) -> Unsealed:
        """The template `token` unlocks, unsealed in memory; TokenError with the lane's reason
        otherwise. The consent is checked before anything is decrypted: withdrawn, already
        boarded (template deleted), expired, no sealed template, or not in `scopes` (the flights
        boarding now; None or empty: every flight) all refuse without a comparison."""
        key = parse_token(token)
        try:
            rows = self._store.db.read(
                "SELECT c.scope, c.expires_at, c.withdrawn_at, c.boarded_at, t.template_id, "
                "t.expires_at, t.dim, t.embedding FROM consents c LEFT JOIN templates t ON "
                "t.consent_id = c.consent_id AND t.sealed = 1 WHERE c.consent_id = ? "
                "ORDER BY t.template_id DESC LIMIT 1", (key.consent_id,))
            if not rows:
                raise TokenError("token_unknown", REFUSALS["token_unknown"])
            scope, consent_expires, withdrawn, boarded, template_id, expires, dim, blob = rows[0]
            now = self._clock.now()
            if withdrawn is not None:
                raise TokenError("token_withdrawn", REFUSALS["token_withdrawn"])
            if boarded is not None and template_id is None:
                raise TokenError("token_used", REFUSALS["token_used"])
            if not retention.is_live(consent_expires, now) or (
                    template_id is not None and not retention.is_live(expires, now)):
                raise TokenError("token_expired", REFUSALS["token_expired"])
            if template_id is None:
                raise TokenError("token_unknown", REFUSALS["token_unknown"])
            if scopes and scope not in scopes:
                raise TokenError("wrong_flight", REFUSALS["wrong_flight"])
            vector = unseal(bytes(blob), key.key, associated_data(key.consent_id, scope,
                                                                  expires), int(dim))
            return Unsealed(key.consent_id, vector, float(expires))
        finally:
            key.wipe()
