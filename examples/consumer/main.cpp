// A downstream program that hands scoresde its own batched score callback: the exact score of
// N(0, I) data under the VP SDE, s(x, t) = −x (every marginal is N(0, I) then). It evaluates the
// probability-flow drift, which must vanish for this score: f − ½g²s = −½βx + ½βx = 0.
#include <cstdio>

#include <scoresde/sde/random.hpp>
#include <scoresde/sde/reverse.hpp>
#include <scoresde/sde/score_model.hpp>
#include <scoresde/sde/vp_sde.hpp>

int main() {
  const int dim = 4;
  const int batch = 8;
  const scoresde::VpSde sde(dim);
  const scoresde::CallbackScore score(
      dim, [](scoresde::ConstBatchRef x, scoresde::ConstRowVectorRef, scoresde::BatchRef s) {
        s = -x;
      });

  scoresde::Batch x(dim, batch);
  sde.SamplePrior(scoresde::NoiseStream(7, scoresde::Stream::kPrior), 0, x);
  scoresde::Batch drift(dim, batch);
  scoresde::DriftScratch scratch;
  scoresde::ReverseDrift(sde, score, scoresde::DriftKind::kProbabilityFlow, x, 0.5, drift,
                         &scratch);
  const double largest = drift.cwiseAbs().maxCoeff();
  std::printf("consumer: max |probability-flow drift| = %.3g over %d samples\n", largest, batch);
  return largest < 1e-12 ? 0 : 1;
}
