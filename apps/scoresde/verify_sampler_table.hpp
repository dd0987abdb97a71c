// `scoresde verify sampler-table`: the analogue of the Score-SDE paper's Table 1 (Song et al.,
// ICLR 2021, predictor-only P1000/P2000, corrector-only C2000, predictor–corrector PC1000; reverse
// diffusion vs ancestral sampling vs Euler–Maruyama; VE and VP) on 2-D Gaussian and Gaussian-mixture
// data with their exact scores, an exact distance to the sampler's target p_ε in place of FID, rows
// at small N, and per-path strong errors against the reverse-SDE solution driven by the same
// Brownian path (the convergence harness). See docs/samplers.md.
#pragma once

#include <CLI/CLI.hpp>

namespace scoresde::cli {

// Registers the sampler-table subcommand on `verify`.
void AddSamplerTableCommand(CLI::App* verify);

}  // namespace scoresde::cli
