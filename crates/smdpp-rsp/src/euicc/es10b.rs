//! ES10b on the card (SGP.22 §5.7.5-5.7.11, §5.7.14): the RSP session's challenge, EUICCInfo2,
//! AuthenticateServer and PrepareDownload with the card's checks of the SM-DP+, CancelSession,
//! and the notifications the card keeps. LoadBoundProfilePackage (§5.7.6) is [`super::load`].

use super::*;

impl Euicc {
    /// GetEUICCChallenge (§5.7.7): a new RSP session; any previous one is discarded, its
    /// one-time key kept if it was never used.
    pub(super) fn challenge(&mut self) -> Vec<u8> {
        self.end_session_keeping_key();
        let challenge: [u8; 16] = crypto::random();
        self.challenge = Some(challenge);
        tlv::encode(0xBF2E, &tlv::encode(0x80, &challenge))
    }

    pub(super) fn info2(&self) -> Vec<u8> {
        let skis = self.ci_skis();
        let ids: Vec<&[u8]> = skis.iter().map(Vec::as_slice).collect();
        EuiccInfo2::encode(self.faults.free_nvm.unwrap_or(self.free_nvm), &ids)
    }

    /// AuthenticateServer (§5.7.13): the server's CERT.DPauth (or CERT.DSauth) and serverSignature1 verified,
    /// the challenge checked; euiccSigned1 signed.
    pub(super) fn authenticate_server(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(request) = AuthenticateServerRequest::parse(command) else {
            return AuthenticateServerResponse::encode_error(&[], 127);
        };
        let tid = request.server_signed1.transaction_id.to_vec();
        let error = |code: u8| AuthenticateServerResponse::encode_error(&tid, code);
        // §5.7.13: invalidCertificate(1), invalidSignature(2), unsupportedCurve(3),
        // noSessionContext(4), invalidOid(5), euiccChallengeMismatch(6), ciPKUnknown(7).
        // CERT.DPauth.ECDSA or CERT.DSauth.ECDSA (§5.7.13): the card cannot tell an SM-DP+
        // from an SM-DS; only a session with DPauth may go on to PrepareDownload (§5.7.5).
        let (dp_auth, role) = match verify_server_any(
            request.server_certificate,
            &[Role::DpAuth, Role::DsAuth],
            &self.cis(),
            self.now.map(|f| f()),
        ) {
            Ok((cert, _, role)) => (cert, role),
            Err(ServerCertError::UnknownCi) => return error(7),
            Err(ServerCertError::Curve) => return error(3),
            Err(ServerCertError::Policy) => return error(5),
            Err(ServerCertError::Invalid(_)) => return error(1),
        };
        // The chain the SM-DP+ asked for (euiccCiPKIdToBeUsed): the session signs with it.
        let Some(chain) = self.chain_of(request.ci_to_be_used) else {
            return error(7);
        };
        if !dp_auth.verifies(request.server_signed1.raw, request.server_signature1) {
            return error(2);
        }
        let Some(challenge) = self.challenge.take() else {
            return error(4);
        };
        if !crypto::same(request.server_signed1.euicc_challenge, &challenge) {
            return error(6);
        }
        let Ok(ctx_params) = CtxParams1::parse(request.ctx_params1) else {
            return error(127);
        };
        let _ = ctx_params;
        let signed1 = EuiccSigned1::encode(
            &tid,
            request.server_signed1.server_address,
            request.server_signed1.server_challenge,
            &self.info2(),
            request.ctx_params1,
        );
        let mut signature = self.identities[chain].key.sign(&signed1);
        self.session = Some(Session {
            transaction_id: tid,
            server_address: String::from_utf8_lossy(request.server_signed1.server_address)
                .into_owned(),
            smdp_oid: match role {
                Role::DpAuth => dp_auth.registered_id.clone().unwrap_or_default(),
                _ => Vec::new(),
            },
            signature1: signature,
            chain,
            dp_auth_ci: dp_auth.authority_key_id.clone(),
            prepared: None,
            loading: None,
        });
        if self.faults.bad_signature1 {
            signature[5] ^= 1;
        }
        let chain = &self.identities[chain];
        AuthenticateServerResponse::encode_ok(&signed1, &signature, &chain.certificate, &chain.eum)
    }

    /// PrepareDownload (§5.7.5): CERT.DPpb (same SM-DP+ OID as DPauth) and smdpSignature2
    /// verified; a one-time key made; euiccSigned2 signed.
    pub(super) fn prepare_download(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(request) = PrepareDownloadRequest::parse(command) else {
            return PrepareDownloadResponse::encode_error(&[], 127);
        };
        let tid = request.smdp_signed2.transaction_id.to_vec();
        let error = |code: u8| PrepareDownloadResponse::encode_error(&tid, code);
        // §5.7.5: invalidCertificate(1), invalidSignature(2), unsupportedCurve(3),
        // noSessionContext(4), invalidTransactionId(5), undefinedError(127).
        let now = self.now.map(|f| f());
        let cis = self.cis();
        // A session an SM-DS authenticated (no SM-DP+ OID) has no CERT.DPauth.ECDSA attached.
        let Some(session) = self.session.as_mut().filter(|s| !s.smdp_oid.is_empty()) else {
            return error(4);
        };
        let dp_pb = match verify_server(request.smdp_certificate, Role::DpPb, &cis, now) {
            Ok((cert, _)) => cert,
            Err(ServerCertError::Curve) => return error(3),
            Err(_) => return error(1),
        };
        // Of the same SM-DP+ as DPauth, and chained to the same CI (§5.7.5).
        if dp_pb.registered_id.as_deref() != Some(&session.smdp_oid[..])
            || dp_pb.authority_key_id != session.dp_auth_ci
        {
            return error(1);
        }
        if !dp_pb.verifies_parts(
            &[
                request.smdp_signed2.raw,
                &tlv::encode(0x5F37, &session.signature1),
            ],
            request.smdp_signature2,
        ) {
            return error(2);
        }
        if request.smdp_signed2.transaction_id != session.transaction_id {
            return error(5);
        }
        let hash_cc: Option<[u8; 32]> = match (request.smdp_signed2.cc_required, request.hash_cc) {
            (true, Some(h)) => match h.try_into() {
                Ok(h) => Some(h),
                Err(_) => return error(127),
            },
            (true, None) => return error(127),
            (false, _) => None,
        };
        // §5.7.5: "If bppEuiccOtpk is provided in smdpSigned2 and it corresponds to a stored
        // one-time key pair [...] for this SM-DP+: use this key pair"; otherwise a new one. A
        // kept pair of this SM-DP+ is used or replaced here either way.
        let kept = self
            .kept_key
            .take_if(|k| k.smdp_oid == session.smdp_oid)
            .map(|k| k.one_time);
        let one_time = match (kept, request.smdp_signed2.bpp_euicc_otpk) {
            (Some(kept), Some(named))
                if kept.public_key()[..] == *named && kept.curve() == dp_pb.curve =>
            {
                kept
            }
            // The key agreement is on the curve of the SM-DP+'s binding key (DPpb's).
            _ => OneTimeKey::generate_on(dp_pb.curve),
        };
        let signed2 =
            PrepareDownloadResponse::signed2(&tid, one_time.public_key(), hash_cc.as_ref());
        let smdp_signature2 = tlv::encode(0x5F37, request.smdp_signature2);
        let mut signature = self.identities[session.chain]
            .key
            .sign_parts(&[&signed2, &smdp_signature2]);
        if self.faults.bad_signature2 {
            signature[7] ^= 1;
        }
        session.prepared = Some(Prepared {
            euicc_otpk_tlv: tlv::encode(0x5F49, one_time.public_key()),
            one_time,
            dp_pb_key: dp_pb.public_key.clone(),
            dp_pb_curve: dp_pb.curve,
        });
        PrepareDownloadResponse::encode_ok(&signed2, &signature)
    }

    /// CancelSession (§5.7.14): the session ended, signed for the SM-DP+.
    pub(super) fn cancel_session(&mut self, command: &[u8]) -> Vec<u8> {
        let parsed = tlv::read_tagged(command, 0xBF41).and_then(|t| {
            let tid = t.required(0x80)?.value.to_vec();
            let reason = t.required(0x81)?.uint()?;
            Ok((tid, reason))
        });
        let Ok((tid, reason)) = parsed else {
            return CancelSessionResponse::encode_error(127);
        };
        // invalidTransactionId(5).
        let Some(session) = self.session.as_ref().filter(|s| s.transaction_id == tid) else {
            return CancelSessionResponse::encode_error(5);
        };
        let signed = CancelSessionResponse::signed(
            &tid,
            &session.smdp_oid,
            u8::try_from(reason).unwrap_or(127),
        );
        let signature = self.identities[session.chain].key.sign(&signed);
        if matches!(reason, 1 | 2) {
            // postponed(1), timeout(2): "the eUICC MAY store the unused otPK.eUICC.ECKA and
            // otSK.eUICC.ECKA, together with the SM-DP+ identity, for future retry" (§5.7.14).
            self.end_session_keeping_key();
        }
        self.session = None;
        CancelSessionResponse::encode_ok(&signed, &signature)
    }

    /// ListNotification (§5.7.9): the metadata of every pending notification.
    pub(super) fn list_notifications(&self) -> Vec<u8> {
        let list: Vec<Vec<u8>> = self
            .notifications
            .iter()
            .map(|n| n.metadata.encode())
            .collect();
        let parts: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        tlv::encode(0xBF28, &tlv::constructed(0xA0, &parts))
    }

    /// RetrieveNotificationsList (§5.7.10): all, or the one with a seqNumber.
    pub(super) fn retrieve_notifications(&self, command: &[u8]) -> Vec<u8> {
        let wanted = tlv::read_tagged(command, 0xBF2B)
            .ok()
            .and_then(|t| t.child(0xA0).ok().flatten())
            .and_then(|c| c.child(0x80).ok().flatten())
            .and_then(|s| s.uint().ok());
        let list: Vec<&[u8]> = self
            .notifications
            .iter()
            .filter(|n| wanted.is_none_or(|seq| n.metadata.seq == seq))
            .map(|n| n.der.as_slice())
            .collect();
        tlv::encode(0xBF2B, &tlv::constructed(0xA0, &list))
    }

    /// RemoveNotificationFromList (§5.7.11): ok(0) or nothingToDelete(1).
    pub(super) fn remove_notification(&mut self, command: &[u8]) -> Vec<u8> {
        let seq = tlv::read_tagged(command, 0xBF30).and_then(|t| t.required(0x80)?.uint());
        let before = self.notifications.len();
        if let Ok(seq) = seq {
            self.notifications.retain(|n| n.metadata.seq != seq);
        }
        if self.notifications.len() < before {
            self.changed();
        }
        let status = if self.notifications.len() < before {
            0
        } else {
            1
        };
        tlv::encode(0xBF30, &tlv::encode(0x80, &[status]))
    }
}
