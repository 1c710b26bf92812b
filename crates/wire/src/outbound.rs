//! domain -> proto: a validated [`Event`] as the `myolog.v1.Event` any client would send, so a
//! program that builds domain events (the EDC bridge) speaks the public contract and goes through the
//! same checks on the server as everyone else. The inverse of [`crate::event_from_proto`]: for every
//! event the wire can carry, `event_from_proto(&event_to_proto(e)?)` gives `e` back (a test checks it
//! on every fixture-shaped event). Decimals are sent normalised (`6.50` as `"6.5"`), enzymes in U/L
//! (the domain keeps them in U/L whatever the unit they were entered in).

use myolog_domain::Decimal;
use myolog_domain::cdasi::{CdasiLocation, CdasiLocationScores, CdasiV2};
use myolog_domain::enzyme::{Enzyme, EnzymePanel, EnzymeUnit};
use myolog_domain::event::{Assessment, Dose, Event, EventBody, SourceAudit};
use myolog_domain::global::GlobalAssessment;
use myolog_domain::haq::{Haq, HaqCategory, HaqItems};
use myolog_domain::mmt8::{Mmt8, MuscleGroup, Side};
use myolog_domain::treatment_history::TreatmentResponse;
use myolog_domain::visit::Population;
use myolog_proto::v1 as pb;

/// A domain value the wire contract cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// A global assessment on a Likert scale: `myolog.v1.Vas` has only cm and mm.
    #[error(
        "event {event_id}: {field} is a Likert global; the wire carries globals as VAS (cm or mm) only"
    )]
    LikertGlobal {
        event_id: String,
        field: &'static str,
    },
}

/// Maps one event, with its source audit record when it has one.
pub fn event_to_proto(event: &Event) -> Result<pb::Event, OutboundError> {
    let id = event.event_id.as_str();
    let body = match &event.body {
        EventBody::StudyRegistered {
            title,
            population: registered,
            baseline_visit,
            protocol,
            blinded,
        } => pb::event::Body::StudyRegistered(pb::StudyRegistered {
            title: title.clone(),
            population: population(*registered) as i32,
            baseline_visit_id: baseline_visit.to_string(),
            protocol_file: String::new(),
            protocol_toml: protocol
                .as_ref()
                .map(|protocol| protocol.source_toml().to_string())
                .unwrap_or_default(),
            blinded: *blinded,
            // Registered under another id: name the protocol's own, as the sender did.
            protocol_study_id: protocol
                .as_ref()
                .filter(|protocol| protocol.registered_as().is_some())
                .map(|protocol| protocol.study().id.clone())
                .unwrap_or_default(),
        }),
        EventBody::ProtocolAmended { protocol } => {
            pb::event::Body::ProtocolAmended(pb::ProtocolAmended {
                protocol_file: String::new(),
                protocol_toml: protocol.source_toml().to_string(),
            })
        }
        EventBody::SubjectEnrolled {
            arm,
            population: enrolled,
            site,
            facts,
        } => pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
            arm: arm.clone(),
            population: enrolled.map_or(pb::Population::Unspecified, population) as i32,
            site_id: site.as_ref().map(ToString::to_string).unwrap_or_default(),
            age_years: facts.age_years(),
            muscle_active: facts.muscle_active(),
            prednisone_stable_weeks: facts.prednisone_stable_weeks(),
            sex: facts.demographics().sex.map(|sex| sex.code().to_string()),
            race: facts
                .demographics()
                .race
                .map(|race| race.code().to_string()),
            informed_consent_date: facts
                .demographics()
                .informed_consent
                .map(|date| date.to_string()),
            treatment_naive: facts.flags().treatment_naive,
            glucocorticoid_exposed: facts.flags().glucocorticoid_exposed,
            on_immunosuppressant: facts.flags().on_immunosuppressant,
            immunosuppressant_stable_months: facts.immunosuppressant_stable_months(),
            skin_biopsy_proven: facts.flags().skin_biopsy_proven,
            bohan_peter_definite_or_probable: facts.flags().bohan_peter_definite_or_probable,
            enmc_239_dermatomyositis: facts.flags().enmc_239_dermatomyositis,
            eular_acr_probability_percent: facts
                .eular_acr_probability_percent()
                .map(|value| value.to_string()),
            fi3_percent_of_upper: facts.fi3_percent_of_upper().map(|value| value.to_string()),
            active_extramuscular_disease: facts.flags().active_extramuscular_disease,
            recent_inflammation_biopsy_or_mri: facts.flags().recent_inflammation_biopsy_or_mri,
            severe_swallowing_trouble: facts.flags().severe_swallowing_trouble,
            negative_cancer_screening: facts.flags().negative_cancer_screening,
            disease_duration_months: facts.disease_duration_months(),
            glucocorticoid_treated_weeks: facts.glucocorticoid_treated_weeks(),
            treatment_history: facts
                .treatment_history()
                .map(|history| pb::TreatmentHistory {
                    treatments: history
                        .treatments()
                        .iter()
                        .map(|treatment| pb::PriorTreatment {
                            drug: treatment.drug.key().to_string(),
                            last_dose_date: treatment.last_dose.map(|date| date.to_string()),
                            response: match treatment.response {
                                None => pb::TreatmentResponse::Unspecified,
                                Some(TreatmentResponse::Responded) => {
                                    pb::TreatmentResponse::Responded
                                }
                                Some(TreatmentResponse::Failed) => pb::TreatmentResponse::Failed,
                                Some(TreatmentResponse::Intolerant) => {
                                    pb::TreatmentResponse::Intolerant
                                }
                            } as i32,
                        })
                        .collect(),
                }),
            attestations: facts
                .attestations()
                .iter()
                .map(|(code, value)| pb::Attestation {
                    code: code.to_string(),
                    value: *value,
                })
                .collect(),
        }),
        EventBody::AssessmentRecorded(assessment) => {
            pb::event::Body::AssessmentRecorded(assessment_to_proto(id, assessment)?)
        }
        EventBody::AssessmentCorrected {
            supersedes,
            reason,
            corrected,
        } => pb::event::Body::AssessmentCorrected(pb::AssessmentCorrected {
            supersedes_event_id: supersedes.to_string(),
            reason: reason.as_str().to_string(),
            corrected: Some(assessment_to_proto(id, corrected)?),
        }),
        EventBody::AssessmentRetracted { retracts, reason } => {
            pb::event::Body::AssessmentRetracted(pb::AssessmentRetracted {
                retracts_event_id: retracts.to_string(),
                reason: reason.as_str().to_string(),
            })
        }
        EventBody::SubjectWithdrawn { reason } => {
            pb::event::Body::SubjectWithdrawn(pb::SubjectWithdrawn {
                reason: reason.as_str().to_string(),
            })
        }
        EventBody::DoseRecorded(dose) => {
            let (kind, drug, mg) = match dose {
                Dose::StudyDrug { drug, mg_per_day } => {
                    (pb::DoseKind::StudyDrug, drug, mg_per_day.mg_per_day())
                }
                Dose::Glucocorticoid { drug, mg_per_day } => {
                    (pb::DoseKind::Glucocorticoid, drug, mg_per_day.mg_per_day())
                }
            };
            pb::event::Body::DoseRecorded(pb::DoseRecorded {
                kind: kind as i32,
                drug: drug.clone(),
                mg_per_day: decimal(mg),
            })
        }
        EventBody::StudyLocked { reason } => pb::event::Body::StudyLocked(pb::StudyLocked {
            reason: reason.as_str().to_string(),
        }),
        EventBody::StudyUnlocked { reason } => pb::event::Body::StudyUnlocked(pb::StudyUnlocked {
            reason: reason.as_str().to_string(),
        }),
        EventBody::StudyUnblinded { reason } => {
            pb::event::Body::StudyUnblinded(pb::StudyUnblinded {
                reason: reason.as_str().to_string(),
            })
        }
    };
    Ok(pb::Event {
        event_id: id.to_string(),
        study_id: event.study.to_string(),
        subject_id: event
            .subject
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        visit_id: event
            .visit
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        clinical_date: event.clinical_date.to_string(),
        body: Some(body),
        source_audit: event.source.as_deref().map(source_audit_to_proto),
    })
}

/// The source audit record; a part not stated is empty text.
pub fn source_audit_to_proto(audit: &SourceAudit) -> pb::SourceAudit {
    let text = |part: &Option<String>| part.clone().unwrap_or_default();
    pb::SourceAudit {
        user: text(&audit.user),
        timestamp: text(&audit.timestamp),
        utc_offset: text(&audit.utc_offset),
        time_zone: text(&audit.time_zone),
        reason: text(&audit.reason),
        source_id: text(&audit.source_id),
        location: text(&audit.location),
    }
}

/// Normalised decimal text: `6.50` -> `"6.5"`, so the wire's "at most N decimals" checks see the
/// value, not the scale it was computed at.
fn decimal(value: Decimal) -> String {
    value.normalize().to_string()
}

fn population(population: Population) -> pb::Population {
    match population {
        Population::Adult => pb::Population::Adult,
        Population::Juvenile => pb::Population::Juvenile,
    }
}

fn assessment_to_proto(
    event_id: &str,
    assessment: &Assessment,
) -> Result<pb::AssessmentRecorded, OutboundError> {
    use pb::assessment_recorded::Instrument;
    let instrument = match assessment {
        Assessment::Globals {
            physician,
            patient,
            extramuscular,
        } => {
            let vas = |value: &Option<GlobalAssessment>, field: &'static str| match value {
                None => Ok(None),
                Some(GlobalAssessment::Vas(cm)) => Ok(Some(pb::Vas {
                    value: Some(pb::vas::Value::Cm(decimal(cm.cm()))),
                })),
                Some(GlobalAssessment::Likert(_)) => Err(OutboundError::LikertGlobal {
                    event_id: event_id.to_string(),
                    field,
                }),
            };
            Instrument::Globals(pb::Globals {
                physician_global: vas(physician, "physician_global")?,
                patient_global: vas(patient, "patient_global")?,
                extramuscular_global: vas(extramuscular, "extramuscular_global")?,
            })
        }
        Assessment::Mmt8(mmt8) => Instrument::Mmt8(mmt8_to_proto(mmt8)),
        Assessment::Haq(Haq::Score(score)) => Instrument::HaqDi(pb::HaqDi {
            value: decimal(score.get()),
        }),
        Assessment::Haq(Haq::Items(items)) => Instrument::Haq(haq_to_proto(items)),
        Assessment::Enzymes(panel) => Instrument::Enzymes(enzymes_to_proto(panel)),
        Assessment::Cdasi(cdasi) => Instrument::Cdasi(cdasi_to_proto(cdasi)),
        Assessment::Lab(lab) => Instrument::Lab(pb::LabMeasurement {
            code: lab.code().key().to_string(),
            value: decimal(lab.value()),
            unit: lab.code().unit().to_string(),
        }),
        Assessment::Stat1(stat1) => {
            use myolog_domain::biopsy::Stat1;
            use pb::skin_biopsy_stat1::Value;
            Instrument::Stat1(pb::SkinBiopsyStat1 {
                value: Some(match stat1 {
                    Stat1::IhcScore(value) => Value::IhcScore(decimal(*value)),
                    Stat1::PercentPositive(value) => Value::PercentPositive(decimal(*value)),
                }),
            })
        }
    };
    Ok(pb::AssessmentRecorded {
        instrument: Some(instrument),
    })
}

fn mmt_slot(grades: &mut pb::Mmt8Grades, group: MuscleGroup) -> &mut Option<pb::MmtGrade> {
    match group {
        MuscleGroup::NeckFlexors => &mut grades.neck_flexors,
        MuscleGroup::Deltoid => &mut grades.deltoid,
        MuscleGroup::Biceps => &mut grades.biceps,
        MuscleGroup::WristExtensors => &mut grades.wrist_extensors,
        MuscleGroup::GluteusMaximus => &mut grades.gluteus_maximus,
        MuscleGroup::GluteusMedius => &mut grades.gluteus_medius,
        MuscleGroup::Quadriceps => &mut grades.quadriceps,
        MuscleGroup::AnkleDorsiflexors => &mut grades.ankle_dorsiflexors,
    }
}

fn mmt8_to_proto(mmt8: &Mmt8) -> pb::Mmt8 {
    let max = u32::from(mmt8.scale().max_total());
    let grade = |g: Option<myolog_domain::mmt8::KendallGrade>| g.map(|g| u32::from(g.get()));
    match mmt8 {
        Mmt8::Total(total) => pb::Mmt8 {
            max,
            total: Some(u32::from(total.total())),
            grades: None,
        },
        Mmt8::Unilateral(unilateral) => {
            let mut grades = pb::Mmt8Grades::default();
            for group in MuscleGroup::ALL {
                // An ungraded group is left out, as the inbound mapping reads a missing group.
                if let Some(value) = grade(unilateral.grades[group.index()]) {
                    *mmt_slot(&mut grades, group) = Some(pb::MmtGrade {
                        grade: Some(value),
                        ..Default::default()
                    });
                }
            }
            pb::Mmt8 {
                max,
                total: None,
                grades: Some(grades),
            }
        }
        Mmt8::Bilateral(bilateral) => {
            let mut grades = pb::Mmt8Grades::default();
            if let Some(value) = grade(bilateral.neck_flexors) {
                grades.neck_flexors = Some(pb::MmtGrade {
                    grade: Some(value),
                    ..Default::default()
                });
            }
            for group in MuscleGroup::LIMB {
                let right = grade(bilateral.limb(group, Side::Right));
                let left = grade(bilateral.limb(group, Side::Left));
                if right.is_some() || left.is_some() {
                    *mmt_slot(&mut grades, group) = Some(pb::MmtGrade {
                        grade: None,
                        right,
                        left,
                    });
                }
            }
            pb::Mmt8 {
                max,
                total: None,
                grades: Some(grades),
            }
        }
    }
}

fn haq_to_proto(items: &HaqItems) -> pb::Haq {
    let answers = |category: HaqCategory| -> Vec<pb::HaqItem> {
        items
            .answers(category)
            .iter()
            .map(|score| pb::HaqItem {
                score: score.map(|score| u32::from(score.get())),
            })
            .collect()
    };
    pb::Haq {
        items: Some(pb::HaqItems {
            dressing: answers(HaqCategory::Dressing),
            arising: answers(HaqCategory::Arising),
            eating: answers(HaqCategory::Eating),
            walking: answers(HaqCategory::Walking),
            hygiene: answers(HaqCategory::Hygiene),
            reach: answers(HaqCategory::Reach),
            grip: answers(HaqCategory::Grip),
            activities: answers(HaqCategory::Activities),
        }),
        // The wire's enum names are the domain keys upper-cased behind their prefix (the inbound
        // mapping reads them the same way); the domain has no key the wire lacks.
        aids: items
            .aids()
            .iter()
            .filter_map(|aid| {
                pb::HaqAid::from_str_name(&format!("HAQ_AID_{}", aid.key().to_ascii_uppercase()))
            })
            .map(|aid| aid as i32)
            .collect(),
        help: items
            .help()
            .iter()
            .filter_map(|category| {
                pb::HaqCategory::from_str_name(&format!(
                    "HAQ_CATEGORY_{}",
                    category.key().to_ascii_uppercase()
                ))
            })
            .map(|category| category as i32)
            .collect(),
    }
}

fn enzymes_to_proto(panel: &EnzymePanel) -> pb::Enzymes {
    let mut out = pb::Enzymes::default();
    for (enzyme, measurement) in panel {
        let result = Some(pb::EnzymeResult {
            value: decimal(measurement.value()),
            uln: decimal(measurement.uln()),
            unit: EnzymeUnit::UnitsPerLitre.key().to_string(),
        });
        match enzyme {
            Enzyme::Ck => out.ck = result,
            Enzyme::Aldolase => out.aldolase = result,
            Enzyme::Ldh => out.ldh = result,
            Enzyme::Ast => out.ast = result,
            Enzyme::Alt => out.alt = result,
        }
    }
    out
}

fn cdasi_slot(
    locations: &mut pb::CdasiLocations,
    location: CdasiLocation,
) -> &mut Option<pb::CdasiLocation> {
    match location {
        CdasiLocation::Scalp => &mut locations.scalp,
        CdasiLocation::Malar => &mut locations.malar,
        CdasiLocation::Periorbital => &mut locations.periorbital,
        CdasiLocation::RestOfFace => &mut locations.rest_of_face,
        CdasiLocation::VNeck => &mut locations.v_neck,
        CdasiLocation::PosteriorNeck => &mut locations.posterior_neck,
        CdasiLocation::UpperBackShoulders => &mut locations.upper_back_shoulders,
        CdasiLocation::RestOfBackButtocks => &mut locations.rest_of_back_buttocks,
        CdasiLocation::Abdomen => &mut locations.abdomen,
        CdasiLocation::LateralUpperThigh => &mut locations.lateral_upper_thigh,
        CdasiLocation::RestOfLegFeet => &mut locations.rest_of_leg_feet,
        CdasiLocation::Arm => &mut locations.arm,
        CdasiLocation::MechanicsHand => &mut locations.mechanics_hand,
        CdasiLocation::DorsumHands => &mut locations.dorsum_hands,
        CdasiLocation::GottronNotHands => &mut locations.gottron_not_hands,
    }
}

fn cdasi_to_proto(cdasi: &CdasiV2) -> pb::Cdasi {
    let mut locations = pb::CdasiLocations::default();
    for (location, scores) in &cdasi.locations {
        let CdasiLocationScores {
            erythema,
            scale,
            erosion,
            poikiloderma,
            calcinosis,
        } = scores;
        *cdasi_slot(&mut locations, *location) = Some(pb::CdasiLocation {
            erythema: u32::from(erythema.get()),
            scale: u32::from(scale.get()),
            erosion: u32::from(erosion.get()),
            poikiloderma: u32::from(poikiloderma.get()),
            calcinosis: u32::from(calcinosis.get()),
        });
    }
    let gottron = &cdasi.gottron_hands;
    pb::Cdasi {
        locations: Some(locations),
        gottron_hands: Some(pb::GottronHands {
            erythema: u32::from(gottron.erythema.get()),
            papules: gottron.papules,
            ulceration: u32::from(gottron.ulceration.get()),
            damage: u32::from(gottron.damage.get()),
        }),
        periungual: u32::from(cdasi.periungual.get()),
        alopecia: u32::from(cdasi.alopecia.get()),
    }
}
