// Confidence intervals of accuracies.
#pragma once

namespace zc::eval {

struct Interval {
  double lo = 0, hi = 0;
};

// The Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai and
// DasGupta, Statist. Sci. 2001, eq. 4): with p = k/n,
//   center = (p + z^2/(2n)) / (1 + z^2/n)
//   half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2)).
// z = 1.959963984540054 gives 95%. n = 0 gives [0, 1] (nothing is known).
Interval wilson(long correct, long n, double z = 1.959963984540054);

}  // namespace zc::eval
