#include "sampling_options.h"

#include "model_options.h"

namespace zc::app {

void add_sampling_options(CLI::App* sub, engine::GenerationOptions& gen, bool* seed_drawn) {
  sub->add_option("--temp", gen.sampling.temperature, "temperature (0: greedy)");
  sub->add_option("--top-k", gen.sampling.top_k, "top-k (0: off)");
  sub->add_option("--top-p", gen.sampling.top_p, "top-p (1: off)");
  sub->add_option("--min-p", gen.sampling.min_p, "min-p (0: off)");
  sub->add_option("--repeat-penalty", gen.sampling.repeat_penalty, "repetition penalty (1: off)");
  sub->add_option("--repeat-last-n", gen.sampling.repeat_last_n, "history the penalty sees (-1: all)");
  sub->add_option("--frequency-penalty", gen.sampling.frequency_penalty,
                  "subtracted from a token's logit per time it was generated (OpenAI's; 0: off)");
  sub->add_option("--presence-penalty", gen.sampling.presence_penalty,
                  "subtracted from the logit of every token generated so far (OpenAI's; 0: off)");
  add_seed_option(sub, "-s,--seed", gen.sampling.seed, "sampling seed (-1: a random one, printed on stderr)",
                  seed_drawn);
  sub->add_option("--stop", gen.stop, "stop string (repeatable)");
  sub->add_flag("--ignore-eos", gen.ignore_eos, "keep generating after EOS");
}

}  // namespace zc::app
