#include "aot/models.h"

#include "examples/lenet_model.h"
#include "graph/zoo.h"

namespace kiln::aot {

std::vector<std::string> ModelNames() {
  std::vector<std::string> names{"lenet", "mnist_cnn", "mlp"};
  for (const std::string& n : graph::zoo::ModelNames()) names.push_back(n);
  return names;
}

StatusOr<std::shared_ptr<graph::nn::Block>> MakeModel(const std::string& name) {
  using namespace graph::nn;
  if (name == "lenet") return std::shared_ptr<Block>(examples::MakeLeNet());
  auto net = std::make_shared<Sequential>();
  if (name == "mnist_cnn") {
    net->Add(Make<Conv2D>(20, 5, Conv2DOptions{.activation = "relu"}));
    net->Add(Make<MaxPool2D>(2, 2));
    net->Add(Make<Conv2D>(50, 5, Conv2DOptions{.activation = "relu"}));
    net->Add(Make<MaxPool2D>(2, 2));
    net->Add(Make<Flatten>());
    net->Add(Make<Dense>(512, DenseOptions{.activation = "relu"}));
    net->Add(Make<Dense>(10));
    return std::shared_ptr<Block>(net);
  }
  if (name == "mlp") {
    net->Add(Make<Flatten>());
    net->Add(Make<Dense>(16, DenseOptions{.activation = "relu"}));
    net->Add(Make<Dense>(10));
    return std::shared_ptr<Block>(net);
  }
  for (const std::string& n : graph::zoo::ModelNames()) {
    if (n == name) return graph::zoo::GetModel(name);
  }
  std::string known;
  for (const auto& n : ModelNames()) known += (known.empty() ? "" : ", ") + n;
  return NotFound("unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace kiln::aot
