// The golden folders' chat templates (chat_template.h, ChatTemplate::from_dir): llama3's and
// qwen3's renders against transformers' (testdata/tokenizers/<model>/chat.json), and
// conversations through the qwen3 template against Jinja2 3.1.6 (tools, tool calls,
// reasoning, enable_thinking).
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace {

using nlohmann::json;
using zc::tok::ChatTemplate;

struct ConversationCase {
  const char* name;
  const char* messages;  // JSON
  bool add_generation_prompt;
  const char* extra;  // JSON
  const char* expected;
};

std::string golden_dir(const std::string& model) { return std::string(ZC_TESTDATA_DIR) + "/tokenizers/" + model; }

// Conversations through the qwen3 template of the golden folder; expected strings from
// Jinja2 3.1.6 as above (the transformers environment), with bos_token '' and eos_token
// '<|im_end|>' as in its tokenizer_config.json.
const ConversationCase kQwen3Cases[] = {
    {"ToolsWithSystem",
     "[{\"content\": \"You help.\", \"role\": \"system\"}, {\"content\": \"Weather in Paris?\", \"role\": \"user\"}]",
     true, "{\"tools\": [{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}]}",
     "<|im_start|>system\n"
        "You help.\n"
        "\n"
        "# Tools\n"
        "\n"
        "You may call one or more functions to assist with the user query.\n"
        "\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        "{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}\n"
        "</tools>\n"
        "\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "Weather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"ToolsNoSystem",
     "[{\"content\": \"Weather in Oslo?\", \"role\": \"user\"}]",
     true, "{\"tools\": [{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}]}",
     "<|im_start|>system\n"
        "# Tools\n"
        "\n"
        "You may call one or more functions to assist with the user query.\n"
        "\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        "{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}\n"
        "</tools>\n"
        "\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "Weather in Oslo?<|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"ToolCallDictArguments",
     "[{\"content\": \"Weather in Rome?\", \"role\": \"user\"}, {\"content\": \"\", \"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"arguments\": {\"city\": \"Rome\"}, \"name\": \"get_weather\"}, \"type\": \"function\"}]}, {\"content\": \"{\\\"temp\\\": 21}\", \"role\": \"tool\"}]",
     true, "{\"tools\": [{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}]}",
     "<|im_start|>system\n"
        "# Tools\n"
        "\n"
        "You may call one or more functions to assist with the user query.\n"
        "\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        "{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}\n"
        "</tools>\n"
        "\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "Weather in Rome?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<tool_call>\n"
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "<tool_response>\n"
        "{\"temp\": 21}\n"
        "</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"ToolCallStringArguments",
     "[{\"content\": \"Weather in Rome?\", \"role\": \"user\"}, {\"content\": \"Checking.\", \"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\", \"name\": \"get_weather\"}, \"type\": \"function\"}, {\"function\": {\"arguments\": {\"city\": \"Milan\"}, \"name\": \"get_weather\"}}]}, {\"content\": \"21C\", \"role\": \"tool\"}, {\"content\": \"19C\", \"role\": \"tool\"}, {\"content\": \"Rome 21C, Milan 19C.\", \"role\": \"assistant\"}]",
     false, "{\"tools\": [{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}]}",
     "<|im_start|>system\n"
        "# Tools\n"
        "\n"
        "You may call one or more functions to assist with the user query.\n"
        "\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        "{\"function\": {\"description\": \"Weather for a city\", \"name\": \"get_weather\", \"parameters\": {\"properties\": {\"city\": {\"description\": \"City name\", \"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}\n"
        "</tools>\n"
        "\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "Weather in Rome?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "Checking.\n"
        "<tool_call>\n"
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n"
        "</tool_call>\n"
        "<tool_call>\n"
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Milan\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "<tool_response>\n"
        "21C\n"
        "</tool_response>\n"
        "<tool_response>\n"
        "19C\n"
        "</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n"
        "\n"
        "</think>\n"
        "\n"
        "Rome 21C, Milan 19C.<|im_end|>\n"},
    {"ThinkInContent",
     "[{\"content\": \"2+2?\", \"role\": \"user\"}, {\"content\": \"<think>\\nAdd them.\\n</think>\\n\\n4\", \"role\": \"assistant\"}]",
     false, "{}",
     "<|im_start|>user\n"
        "2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n"
        "Add them.\n"
        "</think>\n"
        "\n"
        "4<|im_end|>\n"},
    {"ReasoningContentField",
     "[{\"content\": \"1+1?\", \"role\": \"user\"}, {\"content\": \"2\", \"reasoning_content\": \"Trivial.\", \"role\": \"assistant\"}, {\"content\": \"And 2+2?\", \"role\": \"user\"}]",
     true, "{}",
     "<|im_start|>user\n"
        "1+1?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "2<|im_end|>\n"
        "<|im_start|>user\n"
        "And 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"OldTurnThinkingDropped",
     "[{\"content\": \"A?\", \"role\": \"user\"}, {\"content\": \"<think>x</think>B\", \"role\": \"assistant\"}, {\"content\": \"C?\", \"role\": \"user\"}, {\"content\": \"<think>y</think>D\", \"role\": \"assistant\"}]",
     false, "{}",
     "<|im_start|>user\n"
        "A?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "B<|im_end|>\n"
        "<|im_start|>user\n"
        "C?<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n"
        "y\n"
        "</think>\n"
        "\n"
        "D<|im_end|>\n"},
    {"EnableThinkingFalse",
     "[{\"content\": \"Hi\", \"role\": \"user\"}]",
     true, "{\"enable_thinking\": false}",
     "<|im_start|>user\n"
        "Hi<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n"
        "\n"
        "</think>\n"
        "\n"},
    {"EnableThinkingTrue",
     "[{\"content\": \"Hi\", \"role\": \"user\"}]",
     true, "{\"enable_thinking\": true}",
     "<|im_start|>user\n"
        "Hi<|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"SystemOnly",
     "[{\"content\": \"Be brief.\", \"role\": \"system\"}]",
     false, "{}",
     "<|im_start|>system\n"
        "Be brief.<|im_end|>\n"},
    {"ToolResponseInUserMessage",
     "[{\"content\": \"<tool_response>x</tool_response>\", \"role\": \"user\"}, {\"content\": \"real question\", \"role\": \"user\"}, {\"content\": \"ok\", \"role\": \"assistant\"}]",
     true, "{}",
     "<|im_start|>user\n"
        "<tool_response>x</tool_response><|im_end|>\n"
        "<|im_start|>user\n"
        "real question<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n"
        "\n"
        "</think>\n"
        "\n"
        "ok<|im_end|>\n"
        "<|im_start|>assistant\n"},
    {"UnicodeContent",
     "[{\"content\": \"Grüße, 世界 😀\", \"role\": \"user\"}]",
     true, "{\"tools\": [{\"function\": {\"description\": \"日本\", \"name\": \"t\"}, \"type\": \"function\"}]}",
     "<|im_start|>system\n"
        "# Tools\n"
        "\n"
        "You may call one or more functions to assist with the user query.\n"
        "\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        "<tools>\n"
        "{\"function\": {\"description\": \"日本\", \"name\": \"t\"}, \"type\": \"function\"}\n"
        "</tools>\n"
        "\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        "<tool_call>\n"
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n"
        "Grüße, 世界 😀<|im_end|>\n"
        "<|im_start|>assistant\n"},
};

// ---- golden renders from transformers ----

class ChatTemplateGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateGolden, FromDirRendersLikeTransformers) {
  std::ifstream in(golden_dir(GetParam()) + "/chat.json");
  ASSERT_TRUE(in) << "missing chat.json for " << GetParam();
  const json chat = json::parse(in);
  const auto tmpl = ChatTemplate::from_dir(golden_dir(GetParam()));
  ASSERT_TRUE(tmpl.has_value());
  EXPECT_EQ(tmpl->render(chat["messages"], chat["add_generation_prompt"].get<bool>()),
            chat["rendered"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(ChatTemplateModels, ChatTemplateGolden, ::testing::Values("llama3", "qwen3"));

TEST(ChatTemplateGoldenExtra, Llama3WithoutGenerationPromptStillAppendsHeader) {
  // The llama3 template ignores add_generation_prompt; its rendered tail is constant.
  const auto tmpl = ChatTemplate::from_dir(golden_dir("llama3"));
  ASSERT_TRUE(tmpl.has_value());
  const std::string out = tmpl->render(json::parse(R"([{"role": "user", "content": " hi \n"}])"), false);
  EXPECT_EQ(out,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// ---- qwen3 conversations against Jinja2 ----

class ChatTemplateQwen3 : public ::testing::TestWithParam<ConversationCase> {};

TEST_P(ChatTemplateQwen3, MatchesJinja2) {
  const ConversationCase& c = GetParam();
  const auto tmpl = ChatTemplate::from_dir(golden_dir("qwen3"));
  ASSERT_TRUE(tmpl.has_value());
  EXPECT_EQ(tmpl->render(json::parse(c.messages), c.add_generation_prompt, json::parse(c.extra)), c.expected);
}

INSTANTIATE_TEST_SUITE_P(ChatTemplateConversations, ChatTemplateQwen3, ::testing::ValuesIn(kQwen3Cases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
