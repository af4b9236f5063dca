// Names of the saliency metrics and normalizations as the command line spells them
// (SPEC.md section 3; `--saliency-norm full`).
#include "core/error.h"
#include "saliency/saliency.h"

namespace zc::saliency {

std::string metric_name(Metric m) {
  switch (m) {
    case Metric::Accumulated:
      return "accumulated";
    case Metric::Normalized:
      return "normalized";
    case Metric::Recent:
      return "recent";
    case Metric::Random:
      return "random";
  }
  return "unknown";
}

std::string norm_name(Norm n) {
  switch (n) {
    case Norm::ProbeCount:
      return "probes";
    case Norm::Full:
      return "full";
  }
  return "unknown";
}

Metric parse_metric(const std::string& name) {
  for (Metric m : {Metric::Accumulated, Metric::Normalized, Metric::Recent, Metric::Random}) {
    if (metric_name(m) == name) return m;
  }
  fail("unknown saliency metric '{}' (expected accumulated, normalized, recent or random)", name);
}

Norm parse_norm(const std::string& name) {
  for (Norm n : {Norm::ProbeCount, Norm::Full}) {
    if (norm_name(n) == name) return n;
  }
  fail("unknown saliency normalization '{}' (expected probes or full)", name);
}

}  // namespace zc::saliency
