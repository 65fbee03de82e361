//! A Local Profile Assistant (SGP.22 §3.1, the LPD's part of the download): it talks ES9+ to an
//! SM-DP+ over HTTPS (JSON, §6.5, or ASN.1, §6.6: [`Binding`]) and ES10b to an [`Euicc`], as a phone does, so tests and load
//! generation download exactly what an operator ordered through ES2+.
//!
//! - [`Lpa::download`]: InitiateAuthentication → AuthenticateServer → AuthenticateClient →
//!   PrepareDownload → GetBoundProfilePackage → LoadBoundProfilePackage, then the installation
//!   result is sent (HandleNotification) and removed from the card;
//! - [`Lpa::cancel_session`]: the card's signed CancelSession, sent to the SM-DP+;
//! - [`Lpa::enable`], [`Lpa::disable`], [`Lpa::delete`] and [`Lpa::send_notifications`]: local
//!   profile management and the notifications it leaves.
//!
//! The TLS connection trusts the CI of the card (DPtls is issued by it, §4.5.2.1).

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

use crate::crypto;
use crate::es10b::{
    iccid_bytes, AuthenticateServerRequest, CtxParams1, PendingNotification, PrepareDownloadRequest,
};
use crate::es9;
use crate::euicc::Euicc;
use crate::ids::Iccid;
use crate::tlv;

/// The `X-Admin-Protocol` an SGP.22 v2.2 LPA sends (§6.5.1).
const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";
/// The TAC this LPA's device reports in `deviceInfo`.
const TAC: [u8; 4] = [0x35, 0x29, 0x06, 0x11];
/// Largest ES9+ answer read (a Bound Profile Package of a large profile fits).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// How long one ES9+ call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An Activation Code (SGP.22 §4.1): `1$<SM-DP+ address>$<MatchingID>[$<OID>[$<CC flag>]]`,
/// with or without the `LPA:` prefix of its QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCode {
    /// The SM-DP+ address, `host[:port]`.
    pub address: String,
    /// The MatchingID (may be empty).
    pub matching_id: String,
    /// Whether the code says a Confirmation Code is required.
    pub confirmation_code_required: bool,
}

impl FromStr for ActivationCode {
    type Err = LpaError;

    fn from_str(text: &str) -> Result<Self, LpaError> {
        let bad = |why: &str| LpaError::ActivationCode(format!("{why}: {text:?}"));
        let body = text.strip_prefix("LPA:").unwrap_or(text);
        let parts: Vec<&str> = body.split('$').collect();
        if parts.first() != Some(&"1") {
            return Err(bad("an Activation Code starts with 1$"));
        }
        let address = parts
            .get(1)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("no SM-DP+ address"))?;
        Ok(ActivationCode {
            address: (*address).to_owned(),
            matching_id: parts.get(2).copied().unwrap_or_default().to_owned(),
            confirmation_code_required: parts.get(4) == Some(&"1"),
        })
    }
}

/// SM-DSs an event is followed through before its SM-DP+ (an Alternative SM-DS under a root is
/// one).
pub const SMDS_HOPS: usize = 2;

/// The events of ES11 AuthenticateClient's answer (§6.5.2.12).
fn event_entries(answer: &Value) -> Result<Vec<EventEntry>, LpaError> {
    let entries = answer["eventEntries"]
        .as_array()
        .ok_or_else(|| LpaError::Protocol("AuthenticateClient (ES11): no eventEntries".into()))?;
    entries
        .iter()
        .map(|entry| {
            let text = |name: &str| {
                entry[name].as_str().map(str::to_owned).ok_or_else(|| {
                    LpaError::Protocol(format!(
                        "AuthenticateClient (ES11): an event without {name}"
                    ))
                })
            };
            Ok(EventEntry {
                event_id: text("eventId")?,
                rsp_server_address: text("rspServerAddress")?,
            })
        })
        .collect()
}

/// An event an SM-DS holds for the eUICC (ES11 EVENT_ENTRY, §5.8.2 Table 51).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    /// The EventID: the MatchingID of the download at the SM-DP+.
    pub event_id: String,
    /// Where to download: the SM-DP+ address (`host[:port]`).
    pub rsp_server_address: String,
}

/// Why a download or a notification did not go through.
#[derive(Debug, thiserror::Error)]
pub enum LpaError {
    /// The Activation Code is malformed.
    #[error("Activation Code: {0}")]
    ActivationCode(String),
    /// No HTTP answer (TLS, connection, timeout).
    #[error("{function}: {message}")]
    Transport {
        /// The ES9+ function.
        function: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An HTTP answer that is not a function execution status.
    #[error("{function}: HTTP {status}: {body}")]
    Http {
        /// The ES9+ function.
        function: &'static str,
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// The SM-DP+ answered `Failed` (§6.5.1.3).
    #[error("{function}: Failed {subject_code} / {reason_code}: {message}")]
    Failed {
        /// The ES9+ function.
        function: &'static str,
        /// `subjectCode`.
        subject_code: String,
        /// `reasonCode`.
        reason_code: String,
        /// `message`.
        message: String,
    },
    /// The eUICC refused a step (its answer's DER, hex).
    #[error("the eUICC refused {function}: {answer}")]
    Euicc {
        /// The ES10b function.
        function: &'static str,
        /// Its answer, hex.
        answer: String,
    },
    /// The SM-DP+ answered with the error INTEGER of the function's ASN.1 response (§6.6.2).
    #[error("{function}: error {name}({code})")]
    ErrorCode {
        /// The ES9+ function.
        function: &'static str,
        /// The error code.
        code: u64,
        /// Its name in the response type's enumeration (`unknown` if it has none).
        name: &'static str,
    },
    /// Something in an answer is malformed.
    #[error("{0}")]
    Protocol(String),
}

/// How the LPA sends ES9+ requests: the JSON binding (§6.5, one path per function) or the
/// ASN.1 binding (§6.6, `POST /gsma/rsp2/asn1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Binding {
    /// JSON (§6.5).
    #[default]
    Json,
    /// DER `RemoteProfileProvisioningRequest` (§6.6).
    Asn1,
}

impl FromStr for Binding {
    type Err = LpaError;

    fn from_str(text: &str) -> Result<Self, LpaError> {
        match text {
            "json" => Ok(Binding::Json),
            "asn1" => Ok(Binding::Asn1),
            _ => Err(LpaError::Protocol(format!(
                "no binding {text:?}: json or asn1"
            ))),
        }
    }
}

impl LpaError {
    /// `subjectCode / reasonCode` of a `Failed` answer, e.g. `"8.2.6 / 3.8"`.
    pub fn status_code(&self) -> Option<String> {
        match self {
            LpaError::Failed {
                subject_code,
                reason_code,
                ..
            } => Some(format!("{subject_code} / {reason_code}")),
            _ => None,
        }
    }

    /// The error INTEGER of an ASN.1 response (§6.6.2), e.g. `6` (matchingIdRefused).
    pub fn error_code(&self) -> Option<u64> {
        match self {
            LpaError::ErrorCode { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a download left: the profile's ICCID and the installation result the card produced.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The transactionId of the session.
    pub transaction_id: String,
    /// The ICCID from the Profile Metadata.
    pub iccid: Iccid,
    /// The signed Profile Installation Result (`BF37`).
    pub installation_result: Vec<u8>,
    /// Whether the card installed the profile.
    pub installed: bool,
}

/// A Bound Profile Package fetched ([`Lpa::fetch`]) and not loaded yet: [`Lpa::load`] loads it,
/// or [`Lpa::cancel_session`] rejects it (§3.1.3.1, e.g. `metadataMismatch`).
#[derive(Debug, Clone)]
pub struct Fetched {
    transaction_id_hex: String,
    iccid: Iccid,
    /// The `boundProfilePackage` as received.
    pub bound_profile_package: Vec<u8>,
}

/// What [`Lpa::authenticate`] leaves for [`Lpa::complete`].
#[derive(Debug, Clone)]
pub struct Authenticated {
    address: String,
    transaction_id: Vec<u8>,
    transaction_id_hex: String,
    answer: Value,
}

impl Authenticated {
    /// The session's transactionId, hex as ES9+ carries it.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id_hex
    }
}

/// A base64 field of an ES9+ answer.
fn field(json: &Value, name: &str) -> Result<Vec<u8>, LpaError> {
    json[name]
        .as_str()
        .and_then(crypto::base64_decode)
        .ok_or_else(|| LpaError::Protocol(format!("the answer has no base64 {name}")))
}

/// The session of the last download, for a CancelSession.
#[derive(Debug, Clone)]
struct LastSession {
    address: String,
    transaction_id: Vec<u8>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An LPA with its eUICC.
pub struct Lpa {
    euicc: Euicc,
    client: HttpsClient,
    last: Option<LastSession>,
    /// Send the installation result at the end of a download (as an LPA does); off, the
    /// result stays on the card for [`Lpa::send_notifications`].
    pub send_result: bool,
    /// Send every ES9+ request to this `host:port` instead of the address the Activation Code
    /// or the notification names (which still goes into the requests): a device whose name
    /// for the SM-DP+ does not resolve where it runs, like a hosts-file entry.
    pub route_to: Option<String>,
    /// Every ES9+ call's function and how long its answer took, when `Some` (benchmarks).
    pub timings: Option<Vec<(&'static str, Duration)>>,
    /// The binding of the ES9+ calls (JSON unless set).
    pub binding: Binding,
}

impl std::fmt::Debug for Lpa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpa")
            .field("euicc", &self.euicc)
            .finish_non_exhaustive()
    }
}

impl Lpa {
    /// An LPA for `euicc`, trusting `tls_roots` (DER; the CI that issued DPtls) for ES9+.
    pub fn new(euicc: Euicc, tls_roots: &[Vec<u8>]) -> Result<Self, LpaError> {
        let mut roots = rustls::RootCertStore::empty();
        for der in tls_roots {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| LpaError::Protocol(format!("the TLS root is not usable: {e}")))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(crate::pki::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| LpaError::Protocol(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        Ok(Lpa {
            euicc,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            last: None,
            send_result: true,
            route_to: None,
            timings: None,
            binding: Binding::Json,
        })
    }

    /// The card.
    pub fn euicc(&self) -> &Euicc {
        &self.euicc
    }

    /// The card, to change.
    pub fn euicc_mut(&mut self) -> &mut Euicc {
        &mut self.euicc
    }

    /// One ES9+ call in the LPA's [`Binding`], its request given as the JSON binding's fields:
    /// the answer's fields on success (`null` for HandleNotification), or why not.
    pub async fn call(
        &mut self,
        address: &str,
        function: &'static str,
        body: Value,
    ) -> Result<Value, LpaError> {
        let started = std::time::Instant::now();
        let answered = match self.binding {
            Binding::Json => self.call_json(address, function, body).await,
            Binding::Asn1 => self.call_asn1(address, function, body).await,
        };
        if let Some(timings) = self.timings.as_mut() {
            timings.push((function, started.elapsed()));
        }
        answered
    }

    /// One call over the ASN.1 binding: the request's fields as a DER
    /// `RemoteProfileProvisioningRequest`, the `…Ok` of the response as fields again.
    async fn call_asn1(
        &self,
        address: &str,
        function: &'static str,
        body: Value,
    ) -> Result<Value, LpaError> {
        let protocol = |e: es9::Asn1Error| LpaError::Protocol(format!("{function}: {e}"));
        let asn1 = es9::Function::from_path_segment(function)
            .ok_or_else(|| LpaError::Protocol(format!("{function} is no ES9+ function")))?;
        let fields = body.as_object().cloned().unwrap_or_default();
        let der = es9::encode_request(asn1, &fields).map_err(protocol)?;
        let (status, answer) = self
            .send(address, function, es9::PATH, es9::CONTENT_TYPE, der.into())
            .await?;
        match status {
            204 if asn1 == es9::Function::HandleNotification => return Ok(Value::Null),
            200 => {}
            _ => {
                return Err(LpaError::Http {
                    function,
                    status,
                    body: String::from_utf8_lossy(&answer).into_owned(),
                })
            }
        }
        match es9::decode_response(asn1, &answer).map_err(protocol)? {
            Ok(fields) => Ok(Value::Object(fields)),
            Err(code) => Err(LpaError::ErrorCode {
                function,
                code,
                name: asn1.error_name(code).unwrap_or("unknown"),
            }),
        }
    }

    /// One call over the JSON binding: the answer of `Executed-Success`.
    async fn call_json(
        &self,
        address: &str,
        function: &'static str,
        body: Value,
    ) -> Result<Value, LpaError> {
        let (status, answer) = self.post(address, function, body).await?;
        if status == 204 {
            return Ok(Value::Null);
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let json: Value = match serde_json::from_slice(&answer) {
            Ok(v) if status == 200 => v,
            _ => {
                return Err(LpaError::Http {
                    function,
                    status,
                    body: text,
                })
            }
        };
        let execution = &json["header"]["functionExecutionStatus"];
        match execution["status"].as_str() {
            Some("Executed-Success") | Some("Executed-WithWarning") => Ok(json),
            _ => {
                let data = &execution["statusCodeData"];
                let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
                Err(LpaError::Failed {
                    function,
                    subject_code: field("subjectCode"),
                    reason_code: field("reasonCode"),
                    message: field("message"),
                })
            }
        }
    }

    /// POSTs `body` to `function` at `address`: the HTTP status and body.
    pub async fn post(
        &self,
        address: &str,
        function: &'static str,
        body: Value,
    ) -> Result<(u16, Bytes), LpaError> {
        self.post_bytes(address, function, Bytes::from(body.to_string()))
            .await
    }

    /// POSTs any bytes as a JSON body to `function` at `address` (tests of what the SM-DP+
    /// makes of malformed requests): the HTTP status and body.
    pub async fn post_bytes(
        &self,
        address: &str,
        function: &'static str,
        body: Bytes,
    ) -> Result<(u16, Bytes), LpaError> {
        let path = format!("/gsma/rsp2/es9plus/{function}");
        self.send(address, function, &path, "application/json", body)
            .await
    }

    /// POSTs any bytes as an ASN.1 body to `address` (§6.6.1; tests of what the SM-DP+ makes
    /// of malformed requests): the HTTP status and body.
    pub async fn post_asn1(&self, address: &str, body: Bytes) -> Result<(u16, Bytes), LpaError> {
        self.send(address, "asn1", es9::PATH, es9::CONTENT_TYPE, body)
            .await
    }

    /// POSTs `body` of `content_type` to `path` at `address`, for `function`.
    async fn send(
        &self,
        address: &str,
        function: &'static str,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), LpaError> {
        let transport = |message: String| LpaError::Transport { function, message };
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "https://{}{path}",
                self.route_to.as_deref().unwrap_or(address)
            ))
            .header("Content-Type", content_type)
            .header("X-Admin-Protocol", ADMIN_PROTOCOL)
            .header("User-Agent", "smdpp-mock-lpa")
            .body(Full::new(body))
            .map_err(|e| transport(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message.push_str(": ");
                    message.push_str(&s.to_string());
                    source = s.source();
                }
                transport(message)
            })?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| transport(format!("no answer within {CALL_TIMEOUT:?}")))?
    }

    fn es10(&mut self, command: &[u8]) -> Vec<u8> {
        self.euicc.transmit(command)
    }

    /// Downloads and installs the profile of `activation_code` (§3.1.3), giving
    /// `confirmation_code` when the SM-DP+ asks for one; then sends the installation result
    /// unless [`Lpa::send_result`] is off.
    pub async fn download(
        &mut self,
        activation_code: &str,
        confirmation_code: Option<&str>,
    ) -> Result<Downloaded, LpaError> {
        let hashed = confirmation_code.map(|cc| crypto::sha256(cc.as_bytes()));
        let authenticated = self.authenticate(activation_code).await?;
        self.complete(authenticated, hashed).await
    }

    /// The first half of a download: common mutual authentication (§3.1.2) and
    /// AuthenticateClient. What it leaves goes to [`Lpa::complete`], or the session is
    /// cancelled with [`Lpa::cancel_session`].
    pub async fn authenticate(&mut self, activation_code: &str) -> Result<Authenticated, LpaError> {
        let code: ActivationCode = activation_code.parse()?;
        self.authenticate_at(&code.address, &code.matching_id).await
    }

    /// [`Lpa::authenticate`] with an SM-DP+ address and a MatchingID, as an SM-DS event gives
    /// them (§3.1.3 option b: the EventID is the MatchingID).
    pub async fn authenticate_at(
        &mut self,
        address: &str,
        matching_id: &str,
    ) -> Result<Authenticated, LpaError> {
        let (tid, tid_hex, client) = self
            .mutual_authentication(address, Some(matching_id))
            .await?;
        Ok(Authenticated {
            address: address.to_owned(),
            transaction_id: tid,
            transaction_id_hex: tid_hex,
            answer: client,
        })
    }

    /// The common mutual authentication (§3.1.2) with the server at `address`, an SM-DP+ or
    /// an SM-DS alike, `matching_id` in ctxParams1 (absent when `None`): the transactionId
    /// (bytes, hex) and AuthenticateClient's answer.
    async fn mutual_authentication(
        &mut self,
        address: &str,
        matching_id: Option<&str>,
    ) -> Result<(Vec<u8>, String, Value), LpaError> {
        let challenge = self.es10(&tlv::encode(0xBF2E, &[]));
        let challenge = tlv::read_tagged(&challenge, 0xBF2E)
            .and_then(|t| t.required(0x80).map(|c| c.value.to_vec()))
            .map_err(|e| LpaError::Protocol(format!("GetEuiccChallenge: {e}")))?;
        let info1 = self.es10(&tlv::encode(0xBF20, &[]));
        let initiated = self
            .call(
                address,
                "initiateAuthentication",
                json!({
                    "smdpAddress": address,
                    "euiccChallenge": crypto::base64_encode(&challenge),
                    "euiccInfo1": crypto::base64_encode(&info1),
                }),
            )
            .await?;
        let tid_hex = initiated["transactionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let tid = crypto::hex_decode(&tid_hex)
            .ok_or_else(|| LpaError::Protocol("no transactionId".into()))?;
        self.last = Some(LastSession {
            address: address.to_owned(),
            transaction_id: tid.clone(),
        });
        let signature1 = field(&initiated, "serverSignature1")?;
        let signature1 = tlv::read_tagged(&signature1, 0x5F37)
            .map_err(|e| LpaError::Protocol(format!("serverSignature1: {e}")))?
            .value
            .to_vec();
        let request = AuthenticateServerRequest::encode(
            &field(&initiated, "serverSigned1")?,
            &signature1,
            &field(&initiated, "euiccCiPKIdToBeUsed")?,
            &field(&initiated, "serverCertificate")?,
            &CtxParams1::encode(matching_id, TAC),
        );
        let authenticated = self.es10(&request);
        if !matches!(tlv::read_tagged(&authenticated, 0xBF38).and_then(|t| tlv::read_exact(t.value)), Ok(t) if t.tag == 0xA0)
        {
            return Err(self.refused("AuthenticateServer", &authenticated));
        }
        let client = self
            .call(
                address,
                "authenticateClient",
                json!({
                    "transactionId": tid_hex,
                    "authenticateServerResponse": crypto::base64_encode(&authenticated),
                }),
            )
            .await?;
        Ok((tid, tid_hex, client))
    }

    /// Event Retrieval (§3.6.2) from the SM-DS at `smds_address` over ES11 (JSON binding,
    /// §6.5.2.11-12): the common mutual authentication with the SM-DS, then the events it holds
    /// for this eUICC, in the order they were registered. With `event_id`, only that event
    /// (the SM-DS answers `8.9.5 / 3.9` when it has none).
    pub async fn discover(
        &mut self,
        smds_address: &str,
        event_id: Option<&str>,
    ) -> Result<Vec<EventEntry>, LpaError> {
        let binding = std::mem::replace(&mut self.binding, Binding::Json);
        let answered = self.mutual_authentication(smds_address, event_id).await;
        self.binding = binding;
        let (_, _, answer) = answered?;
        event_entries(&answer)
    }

    /// Downloads and installs the profile of an SM-DS event (§3.1.3 option b: `matching_id` is
    /// the EventID), as [`Lpa::download`] does for an Activation Code. An event that names
    /// another SM-DS (a root SM-DS's event of an Alternative SM-DS, §3.6.2 case b) is followed
    /// there first: the server that answers AuthenticateClient with `eventEntries` is an SM-DS,
    /// and its one entry names the SM-DP+ (at most [`SMDS_HOPS`] of them).
    pub async fn download_event(
        &mut self,
        event: &EventEntry,
        confirmation_code: Option<&str>,
    ) -> Result<Downloaded, LpaError> {
        let hashed = confirmation_code.map(|cc| crypto::sha256(cc.as_bytes()));
        let mut event = event.clone();
        for _ in 0..=SMDS_HOPS {
            let address = event.rsp_server_address.clone();
            let (tid, tid_hex, answer) = match self
                .mutual_authentication(&address, Some(&event.event_id))
                .await
            {
                // An SM-DS that serves ES11 in the JSON binding only (as the mock's does; §6.6
                // defines an ASN.1 one too) answers 404 on the ASN.1 path: the hop is made again
                // in JSON.
                Err(LpaError::Http { status: 404, .. }) if self.binding == Binding::Asn1 => {
                    let binding = std::mem::replace(&mut self.binding, Binding::Json);
                    let answered = self
                        .mutual_authentication(&address, Some(&event.event_id))
                        .await;
                    self.binding = binding;
                    answered?
                }
                other => other?,
            };
            if answer.get("eventEntries").is_some() {
                event = event_entries(&answer)?.into_iter().next().ok_or_else(|| {
                    LpaError::Protocol(format!(
                        "the SM-DS {address} answered no event for EventID {}",
                        event.event_id
                    ))
                })?;
                continue;
            }
            let authenticated = Authenticated {
                address,
                transaction_id: tid,
                transaction_id_hex: tid_hex,
                answer,
            };
            return self.complete(authenticated, hashed).await;
        }
        Err(LpaError::Protocol(format!(
            "the event leads through more than {SMDS_HOPS} SM-DSs"
        )))
    }

    /// The second half of a download: [`Lpa::fetch`], then [`Lpa::load`].
    pub async fn complete(
        &mut self,
        authenticated: Authenticated,
        hashed_confirmation_code: Option<[u8; 32]>,
    ) -> Result<Downloaded, LpaError> {
        let fetched = self.fetch(authenticated, hashed_confirmation_code).await?;
        self.load(fetched).await
    }

    /// PrepareDownload with the hashed Confirmation Code (SHA-256 of the code, when the SM-DP+
    /// asks for one), then GetBoundProfilePackage. The session stays open: the package goes to
    /// [`Lpa::load`], or the session is cancelled with [`Lpa::cancel_session`].
    pub async fn fetch(
        &mut self,
        authenticated: Authenticated,
        hashed_confirmation_code: Option<[u8; 32]>,
    ) -> Result<Fetched, LpaError> {
        let Authenticated {
            address,
            transaction_id: tid,
            transaction_id_hex: tid_hex,
            answer: client,
        } = authenticated;
        // PrepareDownload (§3.1.3.2).
        let signed2 = field(&client, "smdpSigned2")?;
        let signature2 = field(&client, "smdpSignature2")?;
        let signature2 = tlv::read_tagged(&signature2, 0x5F37)
            .map_err(|e| LpaError::Protocol(format!("smdpSignature2: {e}")))?
            .value
            .to_vec();
        let metadata = field(&client, "profileMetadata")?;
        let iccid = crate::es10b::ProfileMetadata::parse(&metadata)
            .map_err(|e| LpaError::Protocol(format!("profileMetadata: {e}")))?
            .iccid;
        let cc_required = crate::es10b::SmdpSigned2::parse_raw(&signed2)
            .map_err(|e| LpaError::Protocol(format!("smdpSigned2: {e}")))?
            .cc_required;
        let hash_cc = match (cc_required, hashed_confirmation_code) {
            (true, Some(hashed)) => Some(crypto::hash_confirmation_code(&hashed, &tid)),
            // A user who gives none: the eUICC is asked without one.
            _ => None,
        };
        let prepare = PrepareDownloadRequest::encode(
            &signed2,
            &signature2,
            hash_cc.as_ref(),
            &field(&client, "smdpCertificate")?,
        );
        let prepared = self.es10(&prepare);
        if !matches!(tlv::read_tagged(&prepared, 0xBF21).and_then(|t| tlv::read_exact(t.value)), Ok(t) if t.tag == 0xA0)
        {
            return Err(self.refused("PrepareDownload", &prepared));
        }
        let bound = self
            .call(
                &address,
                "getBoundProfilePackage",
                json!({
                    "transactionId": tid_hex,
                    "prepareDownloadResponse": crypto::base64_encode(&prepared),
                }),
            )
            .await?;
        Ok(Fetched {
            transaction_id_hex: tid_hex,
            iccid,
            bound_profile_package: field(&bound, "boundProfilePackage")?,
        })
    }

    /// Loads a fetched package into the card (LoadBoundProfilePackage, §3.1.3.3) and sends the
    /// installation result unless [`Lpa::send_result`] is off.
    pub async fn load(&mut self, fetched: Fetched) -> Result<Downloaded, LpaError> {
        let Fetched {
            transaction_id_hex: tid_hex,
            iccid,
            bound_profile_package: bpp,
        } = fetched;
        let commands = crate::bpp::es10_commands(&bpp)
            .map_err(|e| LpaError::Protocol(format!("boundProfilePackage: {e}")))?;
        let mut result = Vec::new();
        for command in &commands {
            let answer = self.es10(command);
            if !answer.is_empty() {
                result = answer;
                break;
            }
        }
        let installed = match PendingNotification::parse(&result) {
            Ok(PendingNotification::InstallationResult(pir)) => {
                matches!(pir.result, crate::es10b::FinalResult::Success { .. })
            }
            _ => {
                return Err(LpaError::Protocol(
                    "the eUICC gave no installation result".into(),
                ))
            }
        };
        self.last = None;
        if self.send_result {
            self.send_notifications().await?;
        }
        Ok(Downloaded {
            transaction_id: tid_hex,
            iccid,
            installation_result: result,
            installed,
        })
    }

    fn refused(&self, function: &'static str, answer: &[u8]) -> LpaError {
        LpaError::Euicc {
            function,
            answer: crypto::hex_upper(answer),
        }
    }

    /// Cancels the session of the last download that did not complete (§3.1.3.1 / §5.6.5):
    /// the card signs the cancellation with `reason` (`CancelSessionReason`, 0 to 5 or 127),
    /// the SM-DP+ is told.
    pub async fn cancel_session(&mut self, reason: u8) -> Result<(), LpaError> {
        let last = self
            .last
            .take()
            .ok_or_else(|| LpaError::Protocol("no session to cancel".into()))?;
        let request = tlv::constructed(
            0xBF41,
            &[
                &tlv::encode(0x80, &last.transaction_id),
                &tlv::encode(0x81, &tlv::uint_value(u64::from(reason))),
            ],
        );
        let response = self.es10(&request);
        self.call(
            &last.address,
            "cancelSession",
            json!({
                "transactionId": crypto::hex_upper(&last.transaction_id),
                "cancelSessionResponse": crypto::base64_encode(&response),
            }),
        )
        .await
        .map(|_| ())
    }

    /// Sends every pending notification of the card to the address it names
    /// (HandleNotification, §3.5), removing each the SM-DP+ acknowledged. The number sent.
    pub async fn send_notifications(&mut self) -> Result<usize, LpaError> {
        let list = self.es10(&tlv::encode(0xBF2B, &[]));
        let pending: Vec<Vec<u8>> = tlv::read_tagged(&list, 0xBF2B)
            .and_then(|t| t.required(0xA0))
            .and_then(|a| a.children())
            .map(|c| c.iter().map(|n| n.raw.to_vec()).collect())
            .map_err(|e| LpaError::Protocol(format!("RetrieveNotificationsList: {e}")))?;
        let mut sent = 0;
        for der in pending {
            let (seq, address) = match PendingNotification::parse(&der) {
                Ok(PendingNotification::InstallationResult(p)) => {
                    (p.metadata.seq, p.metadata.address)
                }
                Ok(PendingNotification::Other(o)) => (o.metadata.seq, o.metadata.address),
                Err(e) => return Err(LpaError::Protocol(format!("a pending notification: {e}"))),
            };
            self.call(
                &address,
                "handleNotification",
                json!({ "pendingNotification": crypto::base64_encode(&der) }),
            )
            .await?;
            self.es10(&tlv::encode(
                0xBF30,
                &tlv::encode(0x80, &tlv::uint_value(seq)),
            ));
            sent += 1;
        }
        Ok(sent)
    }

    fn profile_command(&mut self, tag: u32, iccid: &Iccid, refresh: bool) -> u8 {
        let identifier = tlv::encode(0x5A, &iccid_bytes(iccid));
        let command = if tag == 0xBF33 {
            tlv::encode(tag, &identifier)
        } else {
            tlv::constructed(
                tag,
                &[
                    &tlv::encode(0xA0, &identifier),
                    &tlv::encode(0x81, &[if refresh { 0xFF } else { 0 }]),
                ],
            )
        };
        let answer = self.es10(&command);
        tlv::read_tagged(&answer, tag)
            .and_then(|t| t.required(0x80)?.uint())
            .map_or(127, |c| u8::try_from(c).unwrap_or(127))
    }

    /// EnableProfile (ES10c §5.7.16): the card's result code (0 ok).
    pub fn enable(&mut self, iccid: &Iccid) -> u8 {
        self.profile_command(0xBF31, iccid, false)
    }

    /// DisableProfile (§5.7.17): the card's result code (0 ok).
    pub fn disable(&mut self, iccid: &Iccid) -> u8 {
        self.profile_command(0xBF32, iccid, false)
    }

    /// DeleteProfile (§5.7.18): the card's result code (0 ok).
    pub fn delete(&mut self, iccid: &Iccid) -> u8 {
        self.profile_command(0xBF33, iccid, false)
    }
}
