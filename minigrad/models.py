"""Small reference models the lessons share."""

from minigrad import nn


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) in its common modern form, for 1x28x28 images:

        conv 5x5, 6 maps, padding 2 -> ReLU -> max-pool 2   (6 x 14 x 14)
        conv 5x5, 16 maps           -> ReLU -> max-pool 2   (16 x 5 x 5)
        flatten -> 120 -> ReLU -> 84 -> ReLU -> num_classes

    The original used scaled tanh units and trainable average pooling ("subsampling"); ReLU
    and max pooling train faster and reach the same accuracy. 61,706 parameters.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A multilayer perceptron: Linear layers with ReLU between them, e.g.
    ``MLP([784, 300, 100, 10])``; images are flattened first. Optionally BatchNorm1d before each
    ReLU and Dropout after it."""

    def __init__(self, sizes, dropout=0.0, batchnorm=False):
        super().__init__()
        layers = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(n_out))
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
