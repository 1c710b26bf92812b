//! Cohort statistics: responder proportions with exact confidence intervals, paired tests, summaries.
