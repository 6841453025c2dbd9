//! Admin operations: the intents being served (reload status, a view of
//! the set, classifying a text with its trace) and the gauges of
//! `/metrics`.

use super::*;

impl App {
    // ---- admin -------------------------------------------------------------

    pub fn reload_status(&self) -> ReloadStatus {
        self.inner
            .reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the intents directory; on success swaps the set in, on failure
    /// keeps the old one and records why.
    pub fn reload_now(&self) -> ReloadStatus {
        let result = crate::replay::edited_set(
            &self.inner.config.server.intents_dir,
            &Default::default(),
            &self.inner.model,
        );
        match result {
            Ok((c, digest)) => self.install(c, digest),
            Err(e) => {
                let mut status = self.inner.reload.lock().unwrap_or_else(|e| e.into_inner());
                status.attempted_at_ms = self.now_ms();
                status.ok = false;
                status.errors = e.0.iter().map(|e| e.to_string()).collect();
                self.inner.metrics.inc(Count::Reload("error"));
                tracing::warn!(errors = %e, "intents not reloaded; the previous set keeps serving");
                status.clone()
            }
        }
    }

    /// Serves `classifier`, a set built and validated from the intent
    /// files whose digest is `digest` (`replay::edited_set`; a save passes
    /// the set it validated, so it is not built again). If the files have
    /// changed since it was built (a second save or a hand edit landed in
    /// between), the directory as it is now is loaded instead: the watcher
    /// leaves files identical to the served set alone, so a stale set
    /// would otherwise stay until the next edit. Installs are serialised
    /// by the reload lock, and the check is made under it.
    pub fn install(&self, classifier: Classifier, digest: String) -> ReloadStatus {
        let now = self.now_ms();
        let mut status = self.inner.reload.lock().unwrap_or_else(|e| e.into_inner());
        let on_disk = crate::replay::dir_digest(&self.inner.config.server.intents_dir);
        if on_disk.as_deref() != Some(digest.as_str()) {
            drop(status);
            tracing::info!(
                "the intent files changed while a set was built; loading them as they are now"
            );
            return self.reload_now();
        }
        status.attempted_at_ms = now;
        status.ok = true;
        status.errors.clear();
        status.loaded_at_ms = now;
        status.intents = classifier.intents().intents.len();
        *self
            .inner
            .classifier
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(classifier);
        *self
            .inner
            .served_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(digest);
        self.inner.metrics.inc(Count::Reload("ok"));
        tracing::info!(intents = status.intents, "intents reloaded");
        status.clone()
    }

    /// Whether the intent files on disk are the ones the serving set was
    /// built from (then a reload would build the same set again).
    pub fn serves_files_as_they_are(&self) -> bool {
        let now = crate::replay::dir_digest(&self.inner.config.server.intents_dir);
        now.is_some()
            && *self
                .inner
                .served_digest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                == now
    }

    pub fn intents_view(&self) -> IntentsView {
        let c = self.classifier();
        let set = c.intents();
        IntentsView {
            status: self.reload_status(),
            answer_threshold: set.thresholds.answer,
            clarify_threshold: set.thresholds.clarify,
            thresholds: set.thresholds.source.clone(),
            intents: set
                .intents
                .iter()
                .map(|i| IntentView {
                    id: i.id.clone(),
                    description: i.description.clone(),
                    action: i.action.as_str().to_string(),
                    keywords: i.keywords.iter().map(|k| k.phrase.clone()).collect(),
                    patterns: i.patterns.iter().map(|p| p.source.clone()).collect(),
                    examples: i.examples.len(),
                    answers: i.answers.clone(),
                    tests: i.tests.len(),
                    file: i.path.display().to_string(),
                })
                .collect(),
        }
    }

    pub fn classify(&self, text: &str) -> Result<Classified, ApiError> {
        self.check_text(text)?;
        let outcome = self.classifier().decide(text);
        let (intent, options, reason) = match &outcome.decision {
            Decision::Answer { intent } => (Some(intent.clone()), vec![], None),
            Decision::Clarify { options } => (None, options.clone(), None),
            Decision::Fallback => (None, vec![], None),
            Decision::Handoff { reason, intent } => (intent.clone(), vec![], Some(*reason)),
        };
        let r = &outcome.ranking;
        Ok(Classified {
            decision: outcome.decision.kind().to_string(),
            intent,
            options,
            reason,
            why: outcome.why(),
            candidates: r
                .candidates
                .iter()
                .map(|c| CandidateView {
                    intent: c.intent.clone(),
                    score: c.score,
                    lexical: c.lexical,
                    rule: c.rule,
                    evidence: c
                        .evidence
                        .iter()
                        .map(|e| match e {
                            Evidence::Keyword { phrase } => format!("keyword {phrase:?}"),
                            Evidence::Pattern { source, .. } => format!("pattern {source:?}"),
                            Evidence::Meaning { text, similarity } => {
                                format!("meaning {text:?} ({similarity:.2})")
                            }
                            Evidence::Example { text, similarity } => {
                                format!("example {text:?} ({similarity:.2})")
                            }
                        })
                        .collect(),
                })
                .collect(),
            out_of_scope: r.out_of_scope,
            coverage: r.coverage,
            frustration: r.frustration.score,
            frustration_cues: r.frustration.cues.clone(),
            trace: crate::conversation::trace::trace(&outcome.turn()),
        })
    }

    /// The gauges of `/metrics`, read now.
    pub fn render_metrics(&self) -> String {
        let (len, online) = {
            let q = self.queue();
            (q.waiting().len() as i64, q.online() as i64)
        };
        // Emails share the outbox (`email.rs`); this gauge is the webhooks'.
        let outbox = self
            .inner
            .store
            .outbox()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.starts_with(super::email::PREFIX))
                    .count()
            })
            .unwrap_or(0) as i64;
        self.inner.metrics.render(Gauges {
            queue_length: len,
            agents_online: online,
            websockets_open: i64::from(self.inner.sockets.open()),
            webhook_outbox: outbox,
        })
    }
}
