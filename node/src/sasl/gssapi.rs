//! SASL GSSAPI (Kerberos V5, RFC 4752) through the system's GSS-API library, as Java's
//! `GssKrb5Server` / `GssKrb5Client` run it for ZooKeeper: the GSS context exchange, then the
//! security-layer negotiation in wrap tokens (the server offers `auth` only, the client picks
//! it and names its authorization id), after which the authenticated principal is the
//! connection's (`SaslServerCallbackHandler` or `SaslQuorumServerCallbackHandler` decides).
//!
//! Keys come from a JAAS section's `Krb5LoginModule` entry, as ZooKeeper's `Login` reads it:
//! `useKeyTab`, `keyTab`, `principal` (`useTicketCache` / `ticketCache` for an initiator).

use super::SaslError;
use crate::jaas::{self, LoginModule};
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::Cred;
use libgssapi::name::Name;
use libgssapi::oid::GSS_NT_KRB5_PRINCIPAL;
use libgssapi_sys as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The security layers of RFC 4752's negotiation: this build offers and takes `auth` alone
/// (no integrity or confidentiality layer), as ZooKeeper's default `javax.security.sasl.qop`.
const LAYER_NONE: u8 = 0x01;
/// The largest message the server says it receives (Java's default, 64 KiB).
const MAX_BUFFER: u32 = 65536;

/// A `Krb5LoginModule` entry: whose keys, and where they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Krb5Login {
    /// Where it was read from, for messages: `<jaas file>: section 'Server'`.
    origin: String,
    /// `principal`; `None` for `principal="*"` (an acceptor for any key in the keytab).
    principal: Option<String>,
    /// `keyTab` when `useKeyTab=true` (`None`: the default keytab).
    keytab: Option<PathBuf>,
    use_key_tab: bool,
    /// `ticketCache` when `useTicketCache=true`.
    ticket_cache: Option<String>,
    use_ticket_cache: bool,
}

fn java_bool(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl Krb5Login {
    /// The section's `Krb5LoginModule` entry, if it has one.
    pub fn from_section(
        jaas_file: &Path,
        section: &str,
        modules: &[LoginModule],
    ) -> Option<Krb5Login> {
        let m = modules.iter().find(|m| jaas::is_krb5_module(&m.class))?;
        let opt = |k: &str| m.options.get(k);
        let use_key_tab = java_bool(opt("useKeyTab"));
        let use_ticket_cache = java_bool(opt("useTicketCache"));
        Some(Krb5Login {
            origin: format!("{}: section '{section}'", jaas_file.display()),
            principal: opt("principal").filter(|p| p.as_str() != "*").cloned(),
            keytab: opt("keyTab")
                .filter(|_| use_key_tab)
                .map(|k| PathBuf::from(k.trim())),
            use_key_tab,
            ticket_cache: opt("ticketCache")
                .filter(|_| use_ticket_cache)
                .map(|c| c.trim().to_string()),
            use_ticket_cache,
        })
    }

    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    fn keytab_checked(&self) -> Result<Option<String>, String> {
        match &self.keytab {
            None => Ok(None),
            Some(k) => {
                std::fs::File::open(k).map_err(|e| {
                    format!(
                        "{}: Krb5LoginModule keyTab=\"{}\" cannot be read: {e}",
                        self.origin,
                        k.display()
                    )
                })?;
                Ok(Some(k.display().to_string()))
            }
        }
    }

    /// The credentials that accept contexts (a server): the principal's key from the keytab.
    /// Refused (naming the setting) without `useKeyTab=true`, with a keytab that cannot be
    /// read, or one that holds no key of the principal.
    pub fn acceptor(&self) -> Result<Cred, String> {
        if !self.use_key_tab {
            return Err(format!(
                "{}: Krb5LoginModule needs useKeyTab=true (and keyTab, principal) for a \
                 server to accept Kerberos clients",
                self.origin
            ));
        }
        let mut store = Vec::new();
        if let Some(kt) = self.keytab_checked()? {
            store.push(("keytab", kt));
        }
        acquire(self.principal.as_deref(), &store, sys::GSS_C_ACCEPT)
            .map_err(|e| format!("{}: {e}", self.origin))
    }

    /// The credentials that start contexts (a quorum learner): a ticket from the keytab (into
    /// a memory cache of this process), or from the ticket cache.
    pub fn initiator(&self) -> Result<Cred, String> {
        let Some(principal) = &self.principal else {
            return Err(format!(
                "{}: Krb5LoginModule has no principal (needed to log in as a learner)",
                self.origin
            ));
        };
        let mut store = Vec::new();
        if self.use_key_tab {
            match self.keytab_checked()? {
                Some(kt) => store.push(("client_keytab", kt)),
                None => store.push(("client_keytab", "FILE:/etc/krb5.keytab".to_string())),
            }
            // a cache of this process alone: never the user's default one
            store.push(("ccache", format!("MEMORY:ensemble-{}", std::process::id())));
        } else if self.use_ticket_cache {
            if let Some(c) = &self.ticket_cache {
                store.push(("ccache", c.clone()));
            }
        } else {
            return Err(format!(
                "{}: Krb5LoginModule needs useKeyTab=true or useTicketCache=true to log in",
                self.origin
            ));
        }
        acquire(Some(principal), &store, sys::GSS_C_INITIATE)
            .map_err(|e| format!("{}: {e}", self.origin))
    }
}

/// `gss_acquire_cred_from` with a credential store (keytab, client keytab, cache), for the
/// Kerberos mechanism; `name` a Kerberos principal (`None`: any).
fn acquire(name: Option<&str>, store: &[(&str, String)], usage: u32) -> Result<Cred, String> {
    // 1.2.840.113554.1.2.2 (krb5) and 1.2.840.113554.1.2.2.1 (its principal name type)
    static KRB5_PRINCIPAL: [u8; 10] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];
    let mut minor: sys::OM_uint32 = 0;
    let mut gss_name: sys::gss_name_t = std::ptr::null_mut();
    if let Some(n) = name {
        let mut buf = sys::gss_buffer_desc {
            length: n.len(),
            value: n.as_ptr() as *mut std::ffi::c_void,
        };
        let mut oid = sys::gss_OID_desc {
            length: KRB5_PRINCIPAL.len() as u32,
            elements: KRB5_PRINCIPAL.as_ptr() as *mut std::ffi::c_void,
        };
        // SAFETY: buf and oid point to live memory for the call; gss_name is an out pointer
        let major = unsafe { sys::gss_import_name(&mut minor, &mut buf, &mut oid, &mut gss_name) };
        if major != 0 {
            return Err(format!(
                "principal \"{n}\" is not a Kerberos name: {}",
                status(major, minor)
            ));
        }
    }
    let keys: Vec<(CString, CString)> = store
        .iter()
        .filter_map(|(k, v)| Some((CString::new(*k).ok()?, CString::new(v.as_str()).ok()?)))
        .collect();
    let mut elements: Vec<sys::gss_key_value_element_desc> = keys
        .iter()
        .map(|(k, v)| sys::gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: elements.len() as u32,
        elements: elements.as_mut_ptr(),
    };
    let mut cred: sys::gss_cred_id_t = std::ptr::null_mut();
    // SAFETY: every pointer refers to memory alive across the call (keys, elements, set,
    // gss_name); cred is an out pointer, owned by the Cred made of it below
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            gss_name,
            sys::_GSS_C_INDEFINITE,
            std::ptr::null_mut(),
            usage as sys::gss_cred_usage_t,
            &set,
            &mut cred,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if !gss_name.is_null() {
        let mut m2 = 0;
        // SAFETY: gss_name came from gss_import_name and is released once
        unsafe { sys::gss_release_name(&mut m2, &mut gss_name) };
    }
    if major != 0 {
        let whose = name.map_or("any principal".to_string(), |n| {
            format!("principal \"{n}\"")
        });
        let from = store
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "cannot get Kerberos credentials of {whose}{}: {}",
            if from.is_empty() {
                String::new()
            } else {
                format!(" ({from})")
            },
            status(major, minor)
        ));
    }
    // SAFETY: a credential handle gss_acquire_cred_from returned, owned from here on
    Ok(unsafe { Cred::from_c(cred) })
}

/// The messages of a GSS status (major and the mechanism's minor), as `gss_display_status`.
fn status(major: u32, minor: u32) -> String {
    libgssapi::error::Error {
        major: libgssapi::error::MajorFlags::from_bits_retain(major),
        minor,
    }
    .to_string()
    .trim()
    .to_string()
}

fn gss_err(what: &str, e: libgssapi::error::Error) -> SaslError {
    SaslError::new(format!("GSSAPI: {what}: {}", e.to_string().trim()))
}

/// A completed exchange: the authenticated principal and the authorization id it asked for.
pub struct Authenticated {
    pub principal: String,
    pub authzid: String,
}

/// A server step: the token to answer with, and who the client is once complete.
pub type ServerStep = (Vec<u8>, Option<Authenticated>);

enum ServerStage {
    Context,
    /// The context is up and its last token sent: the client's (empty) answer is due.
    Established,
    /// The security layers offered: the client's choice is due.
    Offered,
    Done,
}

/// The server side of one SASL GSSAPI exchange.
pub struct GssapiServer {
    ctx: ServerCtx,
    stage: ServerStage,
}

impl GssapiServer {
    pub fn new(cred: Cred) -> GssapiServer {
        GssapiServer {
            ctx: ServerCtx::new(Some(cred)),
            stage: ServerStage::Context,
        }
    }

    /// One client token in; the server's token out, and once complete the authenticated
    /// principal with the authorization id the client asked for (itself if none).
    pub fn step(&mut self, token: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.stage, ServerStage::Done) {
            ServerStage::Context => {
                let out = self
                    .ctx
                    .step(token, None)
                    .map_err(|e| gss_err("cannot accept the client's context", e))?;
                let out = out.map(|b| b.to_vec()).unwrap_or_default();
                if !self.ctx.is_complete() {
                    self.stage = ServerStage::Context;
                    return Ok((out, None));
                }
                if !out.is_empty() {
                    self.stage = ServerStage::Established;
                    return Ok((out, None));
                }
                self.offer()
            }
            ServerStage::Established => {
                if !token.is_empty() {
                    return Err(SaslError::new(
                        "GSSAPI: the client's answer to the last context token is not empty",
                    ));
                }
                self.offer()
            }
            ServerStage::Offered => {
                let plain = self
                    .ctx
                    .unwrap(token)
                    .map_err(|e| gss_err("cannot unwrap the client's security layer", e))?;
                if plain.len() < 4 {
                    return Err(SaslError::new(
                        "GSSAPI: the client's security layer message is short",
                    ));
                }
                if plain[0] != LAYER_NONE {
                    return Err(SaslError::new(format!(
                        "GSSAPI: the client chose security layer {:#04x}; only auth (0x01) is offered",
                        plain[0]
                    )));
                }
                let authzid = std::str::from_utf8(&plain[4..])
                    .map_err(|_| SaslError::new("GSSAPI: the authorization id is not UTF-8"))?
                    .to_string();
                let peer = self
                    .ctx
                    .source_name()
                    .and_then(|n| n.display_name())
                    .map_err(|e| gss_err("no client name", e))?;
                let peer = String::from_utf8_lossy(&peer).into_owned();
                let authzid = if authzid.is_empty() {
                    peer.clone()
                } else {
                    authzid
                };
                Ok((
                    Vec::new(),
                    Some(Authenticated {
                        principal: peer,
                        authzid,
                    }),
                ))
            }
            ServerStage::Done => Err(SaslError::new(
                "GSSAPI: the authentication is already complete",
            )),
        }
    }

    /// RFC 4752 3.1: the wrapped offer of security layers and the receive buffer size.
    fn offer(&mut self) -> Result<ServerStep, SaslError> {
        let mut msg = MAX_BUFFER.to_be_bytes();
        msg[0] = LAYER_NONE;
        let wrapped = self
            .ctx
            .wrap(false, &msg)
            .map_err(|e| gss_err("cannot wrap the security layer offer", e))?;
        self.stage = ServerStage::Offered;
        Ok((wrapped.to_vec(), None))
    }
}

/// The client side (a quorum learner): `ClientCtx` with mutual authentication, then the
/// choice of the `auth` layer.
pub struct GssapiClient {
    ctx: ClientCtx,
    done: bool,
}

impl GssapiClient {
    /// `service` is the acceptor's Kerberos principal (`zkquorum/host`, the realm defaulted).
    pub fn new(cred: Cred, service: &str) -> Result<GssapiClient, String> {
        let target = Name::new(service.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| format!("\"{service}\" is not a Kerberos principal: {e}"))?;
        Ok(GssapiClient {
            ctx: ClientCtx::new(
                Some(cred),
                target,
                CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG,
                None,
            ),
            done: false,
        })
    }

    /// The first token (`None`) and each answer to the server's: the next token to send,
    /// and whether the exchange is complete from this side once it is sent.
    pub fn step(&mut self, challenge: Option<&[u8]>) -> Result<(Vec<u8>, bool), String> {
        if self.done {
            return Err("GSSAPI: the exchange is already complete".into());
        }
        if !self.ctx.is_complete() {
            let out = self
                .ctx
                .step(challenge, None)
                .map_err(|e| format!("GSSAPI: {}", e.to_string().trim()))?;
            return Ok((out.map(|b| b.to_vec()).unwrap_or_default(), false));
        }
        let offer = challenge.unwrap_or_default();
        let plain = self
            .ctx
            .unwrap(offer)
            .map_err(|e| format!("GSSAPI: cannot unwrap the server's offer: {e}"))?;
        if plain.len() != 4 || plain[0] & LAYER_NONE == 0 {
            return Err("GSSAPI: the server does not offer the auth layer".into());
        }
        // auth, no receive buffer (no security layer), no authorization id: the
        // authenticated principal, as Java's learner sends
        let choice = [LAYER_NONE, 0, 0, 0];
        let wrapped = self
            .ctx
            .wrap(false, &choice)
            .map_err(|e| format!("GSSAPI: cannot wrap the layer choice: {e}"))?;
        self.done = true;
        Ok((wrapped.to_vec(), true))
    }
}
